"""Every asv benchmark the report reads, named once, grouped by the file that defines it.

A name is asv's key for the benchmark, ``file.Class.method`` (the key of
``benchmarks.json`` and of every results file), written out in full so that a
name printed in a "missing" issue or shown in asv's HTML can be found here with
``grep``. Sections and plots import these constants instead of typing the
string again; ``tests/test_report_bench_names.py`` checks that each one is
still a benchmark method of ``benchmarks/<file>.py`` (a renamed benchmark fails
the test, not the report). Which benchmarks the report *expects* results for is
asv's own list, ``benchmarks.json`` (see :func:`.load.expected_benchmarks`).
"""

# benchmarks/bench_seq_len.py: inference time, throughput and rates vs T
SEQ_TIME = "bench_seq_len.SeqLen.time_forward"
SEQ_THROUGHPUT = "bench_seq_len.SeqLenRates.track_throughput"
SEQ_GFLOPS = "bench_seq_len.SeqLenRates.track_gflops"
SEQ_EFF = "bench_seq_len.SeqLenRates.track_efficiency"

# benchmarks/bench_batch_hidden.py: batch and hidden size, and the sgemm they are held to
BH_TIME = "bench_batch_hidden.BatchHidden.time_forward"
BH_GFLOPS = "bench_batch_hidden.BatchHiddenRates.track_gflops"
BH_EFF = "bench_batch_hidden.BatchHiddenRates.track_efficiency"
SGEMM = "bench_batch_hidden.Sgemm.track_sgemm_gflops"

# benchmarks/bench_threads.py
THREADS = "bench_threads.Threads.time_forward"
THREADS_IN_USE = "bench_threads.Threads.track_threads_in_use"

# benchmarks/bench_memory.py: inference memory vs T
PEAK = "bench_memory.Memory.peakmem_forward"
PEAK_BASE = "bench_memory.Memory.peakmem_baseline"
TRACED = "bench_memory.MemoryTraced.track_traced_bytes"

# benchmarks/bench_compile.py and bench_accuracy.py
COLD = "bench_compile.Compile.track_cold_compile"
CACHED = "bench_compile.Compile.track_cached_first_call"
KERNELS = "bench_compile.CompileKernels.track_kernel_compile"
ERROR = "bench_accuracy.Accuracy.track_max_abs_error"

# benchmarks/bench_race.py
RACE_RATIO = "bench_race.Race.track_ratio_to_torch"

# benchmarks/bench_train.py: a training step (forward keeping the tape + backward)
TRAIN_TIME = "bench_train.TrainSeqLen.time_train_step"
TRAIN_PEAK = "bench_train.TrainMemory.peakmem_train_step"
TRAIN_BASE = "bench_train.TrainMemory.peakmem_baseline"
TAPE = "bench_train.TrainTape.track_tape_bytes_per_step"
TRAIN_GFLOPS = "bench_train.TrainRates.track_gflops"
TRAIN_EFF = "bench_train.TrainRates.track_efficiency"

# benchmarks/bench_claims.py: the notes' claims (gradient flow, adding problem, cost per cell)
HORIZON = "bench_claims.GradientFlow.track_horizon"
FLOW = "bench_claims.GradientFlowCurve.track_relative_norm"
ADDING = "bench_claims.Adding.track_test_mse"
CELL_INFER = "bench_claims.CellCost.track_infer_seconds"
CELL_TRAIN = "bench_claims.CellCost.track_train_seconds"
CELL_TAPE = "bench_claims.CellCost.track_tape_bytes_per_step"

# benchmarks/bench_limits.py: LSTM vs scan vs attention, and the machine's limits
LIMITS = "bench_limits.Limits.time_forward"
LIMITS_THREADS = "bench_limits.LimitsThreads.time_forward"
LIMITS_BATCH = "bench_limits.LimitsBatch.time_forward"
BOUND = "bench_limits.Bounds.track_bound"
PERCENT = "bench_limits.Bounds.track_percent_of_bound"
BOUND_THREADS = "bench_limits.BoundsThreads.track_bound"
PERCENT_THREADS = "bench_limits.BoundsThreads.track_percent_of_bound"
FMA = "bench_limits.Peak.track_fma_gflops"
PEAK_SGEMM = "bench_limits.Peak.track_sgemm_gflops"
BANDWIDTH = "bench_limits.Bandwidth.track_gbs"
SYNC = "bench_limits.Sync.track_ns"
SYNC_THREADS = "bench_limits.SyncThreads.track_ns"
CACHES = "bench_limits.Caches.track_bytes"

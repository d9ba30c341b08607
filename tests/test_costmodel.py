"""The cost model: bound arithmetic on hand-checked numbers, the micro-benchmarks
on tiny sizes (positive, finite, quick; no timing is asserted), the two-thread
ping-pong with one and two threads (never a hang), and the command line."""
import dataclasses
import math

import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba import costmodel as cm
from lstm_numba.threads import max_threads, num_threads

TINY = {"sizes": {"L2": 64 << 10, "L3": 256 << 10, "DRAM": 1 << 20}, "budget_s": 0.005,
        "sgemm_n": 128}


def fake_machine(fma=(100.0, 200.0), read=50.0, write=25.0, barrier_ns=1000.0,
                 fma_latency_ns=2.0, l2=2 << 20, l3=32 << 20):
    """A Machine with round numbers: every level and thread count the same
    bandwidth unless a test says otherwise."""
    threads = (1, 2)
    table = lambda v: {f"{lv}/{p}": v * p for lv in cm.LEVELS for p in threads}  # noqa: E731
    return cm.Machine(
        cpu="test", caches={"L1": 48 << 10, "L2": l2, "L3": l3},
        working_set={"L2": 1 << 20, "L3": 8 << 20, "DRAM": 64 << 20},
        fma_gflops=dict(zip(threads, fma)), sgemm_gflops={1: 90.0, 2: 180.0},
        fma_latency_ns=fma_latency_ns, read_gbs=table(read), write_gbs=table(write),
        copy_gbs=table(read), pingpong_ns={1: 20.0, 2: 2 * barrier_ns},
        barrier_ns={1: 0.0, 2: barrier_ns}, forkjoin_ns={1: 1000.0, 2: 2000.0},
        threads=threads)


# ----------------------------------------------------------- bound arithmetic

def test_lstm_batch1_is_a_chain_bound_by_streaming_w_hh():
    m = fake_machine()
    b = cm.bound("lstm", "numba", 10, 1, 256, m=m)
    w_hh = 4 * 256 * 256 * 4                       # 1 MiB: fits the 2 MiB L2
    read_step = w_hh + 256 * 4 + 2 * 256 * 4       # + x_t, + (h, c)
    assert b.level == "L2" and b.threads == 1
    assert b.flops == 10 * 2 * 1 * 4 * 256 * 512   # DeepBench 2*B*G*H*(I+H) per step
    assert b.bytes_read == 10 * read_step
    assert b.bytes_written == 10 * 2 * 256 * 4
    assert b.compute_s == pytest.approx(10 * 1_048_576 / 100e9)
    assert b.memory_s == pytest.approx(10 * read_step / 50e9)          # 210 us > 105 us
    assert b.seconds == pytest.approx(b.memory_s) and b.chain_s == b.seconds
    assert b.binds == "chain (memory)"
    assert b.per_step_s == pytest.approx(read_step / 50e9)
    assert "w_hh 1 MiB" in b.note


def test_lstm_batch16_compute_binds_and_w_hh_out_of_l2_drops_a_level():
    m = fake_machine()
    b = cm.bound("lstm", "numba", 10, 16, 256, m=m)
    assert b.binds == "chain (compute)"
    assert b.seconds == pytest.approx(10 * 2 * 16 * 4 * 256 * 512 / 100e9)
    # H=1024: w_hh is 16 MiB, past a 2 MiB L2, inside a 32 MiB L3
    assert cm.bound("lstm", "numba", 10, 1, 1024, m=m).level == "L3"
    assert cm.bound("lstm", "numba", 10, 1, 2048, m=m).level == "DRAM"


def test_two_threads_split_the_work_and_pay_a_barrier_per_step():
    m = fake_machine()
    one = cm.bound("lstm", "numba-parallel", 10, 1, 256, threads=1, m=m)
    two = cm.bound("lstm", "numba-parallel", 10, 1, 256, threads=2, m=m)
    assert two.threads == 2 and two.sync_s == pytest.approx(10 * 1e-6)
    assert two.memory_s == pytest.approx(one.memory_s / 2)       # fake: bandwidth x p
    # a small H: nothing to stream, the per-step barrier binds
    small = cm.bound("lstm", "torch", 100, 1, 16, threads=2, m=m)
    assert small.binds == "chain (sync)" and small.seconds == pytest.approx(100 * 1e-6)
    # the sequential backend ignores the pools' thread count
    seq = cm.bound("lstm", "numba", 10, 1, 256, threads=2, m=m)
    assert seq == dataclasses.replace(one, backend="numba") and seq.threads == 1


def test_scan_streams_x_and_the_outputs():
    # a machine with a huge peak and slow L3: the scan's bytes bind
    m = fake_machine(fma=(1e5, 2e5), read=1.0, write=1.0)
    t_len, h = 1000, 256
    b = cm.bound("mingru", "numba", t_len, 1, h, m=m)
    read = t_len * h * 4 + 2 * h * h * 4 + h * 4   # x, w_ih once, h0
    write = t_len * h * 4                          # the outputs
    assert (b.bytes_read, b.bytes_written) == (read, write)
    assert b.flops == 2 * t_len * 2 * h * h       # the 2H x I projection
    assert b.level == "L3"                        # 2.6 MB: past the L2
    assert b.binds == "memory" and b.seconds == pytest.approx(read / 1e9)
    # the scan's chain: one dependent FMA per step (1 thread), T/P + carries (P)
    assert b.chain_s == pytest.approx(t_len * 2e-9)
    two = cm.bound("mingru", "numba-parallel", t_len, 1, h, threads=2, m=m)
    assert two.chain_s == pytest.approx((500 + 1) * 2e-9)
    assert two.sync_s == pytest.approx(2 * 1e-6)
    assert two.seconds == pytest.approx(read / 2e9 + 2e-6)
    # minLSTM has three row blocks
    assert cm.bound("minlstm", "numba", t_len, 1, h, m=m).flops == 2 * t_len * 3 * h * h


def test_scan_on_the_real_ratio_is_compute_bound_by_its_projection():
    m = fake_machine()                            # 100 GFLOP/s, 50 GB/s
    b = cm.bound("mingru", "numba", 4096, 1, 256, m=m)
    assert b.binds == "compute"
    assert b.seconds == pytest.approx(2 * 4096 * 2 * 256 * 256 / 100e9)


def test_attention_reads_kv_per_query_block_and_is_compute_bound_at_long_t():
    m = fake_machine()
    t_len, h, q = 128, 64, cm.ATTENTION_QUERY_BLOCK
    b = cm.bound("attention", "numba", t_len, 1, h, m=m)
    keys = q * 1 + t_len                          # block 1 reads 64 keys, block 2 all 128
    assert b.bytes_read == t_len * h * 4 + 3 * h * h * 4 + 2 * h * 4 * keys
    assert b.bytes_written == t_len * h * 4 + 2 * t_len * h * 4     # outputs, K and V
    assert b.flops == ln.flops("attention", t_len, 1, h, h)
    assert b.chain_s == 0.0
    long = cm.bound("attention", "numba", 4096, 1, 256, m=m)
    assert long.binds == "compute"
    assert long.flops == 2 * 4096 * 3 * 256 * 256 + 2 * 256 * 4096 * 4097


def test_percent_of_bound_and_bad_input():
    m = fake_machine()
    b = cm.bound("lstm", "numba", 10, 1, 256, m=m)
    assert b.percent_of(2 * b.seconds) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="measured_s"):
        b.percent_of(0.0)
    with pytest.raises(ValueError, match="backend"):
        cm.bound("lstm", "cuda", 10, 1, 256, m=m)
    with pytest.raises(ValueError, match="cell"):
        cm.bound("transformer", "numba", 10, 1, 256, m=m)
    with pytest.raises(ValueError, match="seq_len"):
        cm.bound("lstm", "numba", 0, 1, 256, m=m)
    with pytest.raises(ValueError, match="threads=4"):
        cm.bound("lstm", "torch", 10, 1, 256, threads=4, m=m)


def test_machine_private_units_scale_and_shared_ones_take_the_best_of_fewer_threads():
    m = fake_machine(fma=(100.0, 30.0))           # 2 threads spoiled by a busy core
    assert m.peak(2) == 200e9                     # FMA units are per core: 2 x 1 thread's
    assert m.peak(1) == 100e9
    assert fake_machine(fma=(100.0, 250.0)).peak(2) == 250e9
    assert m.bandwidth("read", "L2", 2) == 100e9  # fake: bandwidth x p
    spoiled = dataclasses.replace(m, read_gbs={**m.read_gbs, "L2/2": 1.0, "L3/2": 1.0})
    assert spoiled.bandwidth("read", "L2", 2) == 100e9      # private: 2 x 50
    assert spoiled.bandwidth("read", "L3", 2) == 50e9       # shared: the 1-thread figure
    assert any("read L3 on 2 threads" in s for s in spoiled.suspect())
    assert any("FMA peak on 2 threads" in s for s in m.suspect())
    assert fake_machine().suspect() == []
    assert m.sync(1) == 0.0 and m.sync(2) == pytest.approx(1e-6)
    # a barrier that could not be measured (partner starved) counts as free, and is said
    gave_up = dataclasses.replace(m, barrier_ns={1: 0.0, 2: float("nan")})
    assert gave_up.sync(2) == 0.0
    assert any("barrier on 2 threads not measured" in s for s in gave_up.suspect())
    assert m.level(1 << 20) == "L2" and m.level(3 << 20) == "L3"
    assert m.level(3 << 20, threads=2) == "L2" and m.level(64 << 20) == "DRAM"


def test_bound_table_covers_cases_and_formats():
    m = fake_machine()
    rows = cm.bound_table((64, 256), (1,), 32, m=m)
    # single-thread backends once, the others at 1 and 2 threads
    single = sum(b in cm.SINGLE_THREAD_BACKENDS for _, b in cm.CASES)
    assert len(rows) == 2 * (single + 2 * (len(cm.CASES) - single))
    text = cm.format_bounds(rows, {("lstm", "numba", 64, 1, 1): rows[0].seconds * 2})
    assert "chain (memory)" in text or "chain (compute)" in text
    assert "50%" in text
    assert "FMA peak 100.0" in cm.format_machine(m)


# ------------------------------------------------------------ cache sizes

def test_cache_sizes_from_sysfs(tmp_path):
    for idx, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                (2, "Unified", "2048K"),
                                                (3, "Unified", "307200K")]):
        d = tmp_path / f"index{idx}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    assert cm.cache_sizes(str(tmp_path)) == {"L1": 48 << 10, "L2": 2 << 20, "L3": 300 << 20}
    assert cm.cache_sizes(str(tmp_path / "missing"))["L2"] > 0     # falls back
    ws = cm.working_sets({"L1": 48 << 10, "L2": 2 << 20, "L3": 300 << 20})
    assert ws == {"L2": 1 << 20, "L3": 8 << 20, "DRAM": 256 << 20}
    here = cm.cache_sizes()
    assert 0 < here["L1"] < here["L2"] <= here["L3"]


# ------------------------------------------------------------ micro-benchmarks

def _positive(v):
    return np.isfinite(v) and v > 0


def test_fma_and_stream_micro_benchmarks_give_positive_figures():
    assert _positive(cm.fma_peak_gflops(1, call_s=1e-4, budget_s=0.005))
    assert _positive(cm.fma_latency_ns(n=1000, budget_s=0.001))
    gbs = cm.stream_gbs(64 << 10, 1, call_bytes=1 << 20, budget_s=0.005)
    assert set(gbs) == {"read", "write", "copy"} and all(map(_positive, gbs.values()))
    with pytest.raises(ValueError, match="kinds"):
        cm.stream_gbs(64 << 10, 1, kinds=("scan",))
    with pytest.raises(ValueError, match="threads"):
        cm.fma_peak_gflops(max_threads() + 1)


def test_pingpong_one_thread_is_the_atomics_alone():
    assert _positive(cm.sync_ns(1, "pingpong", rounds=100, budget_s=0.001))
    assert _positive(cm.sync_ns(1, "forkjoin", budget_s=0.001))
    with pytest.raises(ValueError, match="mode"):
        cm.sync_ns(1, "handshake")


@pytest.mark.skipif(max_threads() < 2, reason="needs 2 cores")
@pytest.mark.parametrize("mode", ["pingpong", "barrier"])
def test_pingpong_two_threads(mode):
    assert _positive(cm.sync_ns(2, mode, rounds=100, budget_s=0.001))


def test_pingpong_kernel_with_a_one_thread_pool_gives_up_instead_of_hanging():
    from lstm_numba import _costmodel_kernels as k

    flags = np.zeros(2, np.int64)
    with num_threads(1):           # prange(2) runs both roles on one thread, in turn
        k.pingpong(flags, 10, 0, 1000)
    assert flags[1] != 0           # the first wait gave up and said so
    assert flags[0] >= 1


def test_measure_machine_tiny_and_cached():
    m = cm.machine(**TINY)
    assert cm.machine(**TINY) is m
    assert m.threads[0] == 1
    for p in m.threads:
        assert _positive(m.fma_gflops[p]) and _positive(m.sgemm_gflops[p])
        for lv in cm.LEVELS:
            assert _positive(m.read_gbs[f"{lv}/{p}"]) and _positive(m.copy_gbs[f"{lv}/{p}"])
    b = cm.bound("mingru", "numba", 64, 1, 32, m=m)
    assert math.isfinite(b.seconds) and b.seconds > 0
    assert set(m.to_dict()) >= {"fma_gflops", "read_gbs", "barrier_ns"}


# --------------------------------------------------------------------- CLI

def test_cli_prints_limits_and_bounds(capsys):
    from lstm_numba.__main__ import main

    assert main(["costmodel", "--quick", "--seq-len", "64", "--batch", "1",
                 "--hidden", "32", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "FMA peak" in out and "read  GB/s" in out and "bound ms" in out
    assert "lstm" in out and "chain (" in out
    assert main(["costmodel", "--quick", "--threads", "99"]) == 2
    with pytest.raises(SystemExit):
        main(["costmodel", "--seq-len", "x"])

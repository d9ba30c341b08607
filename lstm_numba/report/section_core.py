"""The sections built from the asv suite's size sweeps and checks: time per
step, key numbers, and one section per question the suite asks."""
from __future__ import annotations

from . import plots, plots_runtime as rt, tables
from .bench_names import (BH_EFF, BH_GFLOPS, BH_TIME, CACHED, COLD, ERROR, KERNELS, PEAK,
                          PEAK_BASE, SEQ_EFF, SEQ_GFLOPS, SEQ_THROUGHPUT, SEQ_TIME, SGEMM,
                          THREADS, THREADS_IN_USE, TRACED)
from .page import SectionResult
from .sections import Section


def _steps(ctx):
    found, note = tables.step_tables(ctx.df)
    return SectionResult(tables=found, notes=[note] if note else [])


def _keys(ctx):
    return SectionResult(key_numbers=tables.key_numbers(ctx.df))


def _plots(*fns):
    def build(ctx):
        res = SectionResult()
        for fn in fns:
            fn(ctx, res)
        return res
    return build


SECTIONS = [
    Section("steps", "Time per step (µs), forward pass / T", _steps, needs=(SEQ_TIME,)),
    Section("key-numbers", "Key numbers", _keys),
    Section("seq-len", "Sequence length", _plots(plots.plot_seq_len),
            needs=(SEQ_TIME, SEQ_THROUGHPUT, SEQ_GFLOPS, SEQ_EFF),
            intro="What a layer costs as T grows (bench_seq_len)."),
    Section("memory", "Memory", _plots(plots.plot_memory),
            needs=(PEAK, PEAK_BASE, TRACED),
            intro="How memory grows with T (bench_memory)."),
    Section("batch-hidden", "Batch and hidden size", _plots(plots.plot_roofline,
                                                            plots.plot_heatmaps),
            needs=(BH_TIME, BH_GFLOPS, BH_EFF, SGEMM),
            intro="Where batching is nearly free, and the speedups over the notes' loop "
                  "and torch (bench_batch_hidden)."),
    Section("threads", "Threads", _plots(rt.plot_threads),
            needs=(THREADS, THREADS_IN_USE),
            intro="What more cores buy at batch 1 and 64 (bench_threads)."),
    Section("compile", "JIT compile", _plots(rt.plot_compile),
            needs=(COLD, CACHED, KERNELS),
            intro="What the JIT costs, cold and from the cache (bench_compile)."),
    Section("accuracy", "Accuracy", _plots(rt.plot_accuracy), needs=(ERROR,),
            intro="Does every backend still compute the same thing (bench_accuracy)?"),
]

"""What CPU this is, and the vector width the package's kernels compile for.

Every record of a measurement names the machine it ran on (race records,
asv results, the report): :func:`cpu_info` gives the facts as a dict,
:func:`describe_cpu` as one line, e.g.
``"Intel Xeon (emeraldrapids), 2 cores, L2 2 MiB, AVX-512, kernels 512-bit"``.

The vector width. LLVM's tuning for Intel cores with AVX-512 (Skylake-X to
Emerald Rapids, ``rocketlake``) carries ``prefer-256-bit``: its vectorizers
then build 256-bit code although 512-bit registers exist (AMD Zen 4/5 have no
such tuning and get 512 bits). The package's kernels carry the LLVM function
attribute ``"prefer-vector-width"`` (:func:`kernel_vector_bits`; attached in
:mod:`lstm_numba._gemm`), which overrides that tuning for those functions
only: no process-wide setting changes, so code other libraries compile in
the same process is untouched. The widths reported here are not assumed but
read back from the assembly LLVM makes of a small loop for this CPU, with
and without the attribute (a ~40 ms probe, once per process).
"""
from __future__ import annotations

import functools
import os
import platform
import re

_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def _l2_bytes() -> int | None:
    """Per-core L2 size from sysfs (Linux), None where unknown."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return None
    for e in entries:
        if not e.startswith("index"):
            continue
        try:
            with open(f"{base}/{e}/level") as f:
                level = f.read().strip()
            with open(f"{base}/{e}/size") as f:
                size = f.read().strip()
        except OSError:
            continue
        if level == "2":
            m = re.fullmatch(r"(\d+)([KMG]?)", size)
            if m:
                return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20,
                                          "G": 1 << 30}[m.group(2)]
    return None


def _short_model(model: str | None, vendor: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8480C' -> 'Intel Xeon Platinum 8480C'."""
    if not model:
        return vendor
    s = re.sub(r"\((R|TM|tm|r)\)", "", model)
    s = re.sub(r"\bCPU\b|\bProcessor\b|\d+-Core", "", s)
    s = re.sub(r"@.*$", "", s)
    return " ".join(s.split()) or vendor


def _llvm_target():
    """(cpu name, feature string) as Numba's JIT uses them (NUMBA_CPU_* honoured)."""
    import llvmlite.binding as ll
    from numba.core import config
    from numba.core.codegen import initialize_llvm
    initialize_llvm()
    name = config.CPU_NAME or ll.get_host_cpu_name()
    feats = config.CPU_FEATURES
    if feats is None:
        feats = ll.get_host_cpu_features().flatten()
    return name, feats


def _has(features: str, flag: str) -> bool:
    return f"+{flag}" in features.split(",")


def kernel_vector_bits() -> int:
    """The vector width asked of LLVM for the package's kernels.

    512 where the target has AVX-512F (evex512 not turned off), else 256
    with AVX, else 0 (no request: LLVM's default for the target).
    """
    _, feats = _llvm_target()
    if _has(feats, "avx512f") and "-evex512" not in feats.split(","):
        return 512
    if _has(feats, "avx"):
        return 256
    return 0


def kernel_fn_attribute() -> str | None:
    """The LLVM function attribute the kernels carry, e.g. '"prefer-vector-width"="512"'."""
    bits = kernel_vector_bits()
    return f'"prefer-vector-width"="{bits}"' if bits else None


_PROBE = r"""
define void @probe(float* noalias %a, float* noalias %b, i64 %n) {attr} {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %pa = getelementptr float, float* %a, i64 %i
  %pb = getelementptr float, float* %b, i64 %i
  %x = load float, float* %pa
  %y = load float, float* %pb
  %z = fadd float %x, %y
  store float %z, float* %pa
  %i1 = add i64 %i, 1
  %c = icmp ult i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  ret void
}}
"""


def _probe_bits(attr: str | None) -> int | None:
    """Widest vector register in LLVM's -O3 code for a float loop, None if unknown."""
    try:
        import llvmlite.binding as ll
        name, feats = _llvm_target()
        ll.initialize_native_asmprinter()
        mod = ll.parse_assembly(_PROBE.format(attr=attr or ""))
        tm = ll.Target.from_default_triple().create_target_machine(
            cpu=name, features=feats, opt=3)
        pto = ll.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pb = ll.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        asm = tm.emit_assembly(mod)
    except Exception:       # no x86 asm printer, an old llvmlite: unknown
        return None
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return None
    for reg, bits in (("zmm", 512), ("ymm", 256), ("xmm", 128)):
        if re.search(rf"%{reg}\d", asm):
            return bits
    return 0


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """Facts about this CPU as the kernels see it.

    Returns
    -------
    dict
        ``vendor`` ("Intel", "AMD", or the raw vendor string), ``model``
        (marketing name, trademarks dropped), ``llvm_cpu`` (LLVM's name for
        the host CPU, what Numba compiles for), ``cores`` (CPUs this process
        may run on), ``l2_bytes`` (per core, int or None), ``isa`` (widest of
        "AVX-512", "AVX2", "AVX", "SSE"), ``vector_bits`` (width of the
        kernels' vector code, read from LLVM's assembly), ``llvm_default_bits``
        (the width LLVM picks for this CPU without the kernels' attribute),
        ``vector_choice`` (how ``vector_bits`` was chosen, in words),
        ``machine`` (platform.machine()).
    """
    vendor_raw = _cpuinfo_field("vendor_id") or platform.processor() or "unknown"
    vendor = _VENDORS.get(vendor_raw, vendor_raw)
    model = _short_model(_cpuinfo_field("model name"), vendor)
    try:
        llvm_cpu, feats = _llvm_target()
    except Exception:
        llvm_cpu, feats = "unknown", ""
    if _has(feats, "avx512f"):
        isa = "AVX-512"
    elif _has(feats, "avx2"):
        isa = "AVX2"
    elif _has(feats, "avx"):
        isa = "AVX"
    else:
        isa = "SSE" if _has(feats, "sse2") else "none"
    attr = kernel_fn_attribute() if feats else None
    default_bits = _probe_bits(None)
    bits = _probe_bits(attr)
    if attr is None:
        choice = "LLVM's default for the target (no width requested)"
    elif default_bits is not None and bits == default_bits:
        choice = (f"function attribute {attr}; LLVM's tuning for {llvm_cpu} "
                  f"already gives {default_bits}-bit")
    else:
        choice = (f"function attribute {attr} on the kernels; LLVM's tuning for "
                  f"{llvm_cpu} alone gives {default_bits}-bit")
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return {
        "vendor": vendor,
        "model": model,
        "llvm_cpu": llvm_cpu,
        "cores": cores,
        "l2_bytes": _l2_bytes(),
        "isa": isa,
        "vector_bits": bits,
        "llvm_default_bits": default_bits,
        "vector_choice": choice,
        "machine": platform.machine(),
    }


def _size(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    return f"{n >> 10} KiB"


def describe_cpu() -> str:
    """One line naming the CPU, e.g. "Intel Xeon (emeraldrapids), 2 cores,
    L2 2 MiB, AVX-512, kernels 512-bit (LLVM default 256-bit)"."""
    i = cpu_info()
    parts = [f"{i['model']} ({i['llvm_cpu']})", f"{i['cores']} cores"]
    if i["l2_bytes"]:
        parts.append(f"L2 {_size(i['l2_bytes'])}")
    parts.append(i["isa"])
    if i["vector_bits"]:
        k = f"kernels {i['vector_bits']}-bit"
        if i["llvm_default_bits"] and i["llvm_default_bits"] != i["vector_bits"]:
            k += f" (LLVM default {i['llvm_default_bits']}-bit)"
        parts.append(k)
    return ", ".join(parts)


def cpu_tag() -> str:
    """A short file-name tag for records, e.g. "intel" or "amd"."""
    v = cpu_info()["vendor"].lower()
    return re.sub(r"[^a-z0-9]+", "-", v).strip("-") or "cpu"

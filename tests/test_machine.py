"""machine.py: the CPU facts every record of a measurement carries."""
import re

import lstm_numba as ln
from lstm_numba import machine


def test_cpu_info_keys_and_types():
    i = ln.cpu_info()
    for key, typ in (("vendor", str), ("model", str), ("llvm_cpu", str), ("cores", int),
                     ("isa", str), ("vector_choice", str), ("machine", str)):
        assert isinstance(i[key], typ), (key, i[key])
        if typ is str:
            assert i[key], key
    assert i["cores"] >= 1
    assert i["l2_bytes"] is None or (isinstance(i["l2_bytes"], int) and i["l2_bytes"] >= 1024)
    assert i["isa"] in ("AVX-512", "AVX2", "AVX", "SSE", "none")
    for key in ("vector_bits", "llvm_default_bits"):
        assert i[key] is None or i[key] in (0, 128, 256, 512), (key, i[key])


def test_kernels_get_the_full_width_of_the_isa():
    """On x86 the probe's assembly uses the widest registers the ISA has."""
    i = ln.cpu_info()
    if i["vector_bits"] is None:        # not x86: nothing to read back
        return
    widest = {"AVX-512": 512, "AVX2": 256, "AVX": 256, "SSE": 128}.get(i["isa"])
    if widest:
        assert i["vector_bits"] == widest, i
    assert i["llvm_default_bits"] is None or i["llvm_default_bits"] <= i["vector_bits"]


def test_describe_cpu_is_one_line_naming_the_facts():
    line = ln.describe_cpu()
    i = ln.cpu_info()
    assert "\n" not in line
    assert i["llvm_cpu"] in line and f"{i['cores']} cores" in line and i["isa"] in line
    if i["vector_bits"]:
        assert f"kernels {i['vector_bits']}-bit" in line


def test_fn_attribute_matches_requested_width():
    bits = machine.kernel_vector_bits()
    attr = machine.kernel_fn_attribute()
    assert bits in (0, 256, 512)
    if bits:
        assert attr == f'"prefer-vector-width"="{bits}"'
    else:
        assert attr is None


def test_cpu_tag_is_a_file_name():
    assert re.fullmatch(r"[a-z0-9-]+", machine.cpu_tag())


def test_short_model_drops_trademarks():
    assert machine._short_model("Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz",
                                "Intel") == "Intel Xeon Platinum 8480C"
    assert machine._short_model("AMD EPYC 9R14 96-Core Processor", "AMD") == "AMD EPYC 9R14"
    assert machine._short_model(None, "Intel") == "Intel"

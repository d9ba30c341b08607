"""The report's catalogue of asv benchmark names (lstm_numba/report/bench_names.py).

Every name the report reads must still be a benchmark of the suite: a renamed
class or method in ``benchmarks/bench_*.py`` fails here, instead of turning a
plot into a "missing" issue on the next report. And each benchmark is named
once: no other report module types a ``file.Class.method`` key itself.
"""
import re
from pathlib import Path

from helpers import BENCH_PREFIXES, benchmark_modules
from lstm_numba.report import bench_names

REPORT = Path(bench_names.__file__).parent
#: An asv key as typed in code: ``"bench_<file>.<Class>.<method>"``.
KEY = re.compile(r"bench_[a-z_]+\.[A-Z][A-Za-z0-9]*\.[a-z_0-9]+")


def _names():
    return {k: v for k, v in vars(bench_names).items() if k.isupper()}


def test_each_name_is_a_benchmark_method_of_the_suite():
    names = _names()
    assert len(names) > 30
    files = sorted({v.split(".")[0] for v in names.values()})
    with benchmark_modules(files) as mods:
        for const, key in names.items():
            file, cls, method = key.split(".")
            assert hasattr(mods[file], cls), f"{const}: benchmarks/{file}.py has no class {cls}"
            assert method.startswith(BENCH_PREFIXES), f"{const}: {method} is not an asv benchmark"
            assert callable(getattr(getattr(mods[file], cls), method, None)), \
                f"{const}: {file}.{cls} has no method {method}"


def test_each_benchmark_is_named_once():
    values = list(_names().values())
    assert len(values) == len(set(values)), sorted(v for v in values if values.count(v) > 1)
    for path in sorted(REPORT.glob("*.py")):
        if path.name == "bench_names.py":
            continue
        code = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                if not ln.lstrip().startswith("#")]
        typed = [k for ln in code for k in KEY.findall(ln)]
        assert not typed, f"{path.name} types {typed}: import them from bench_names"

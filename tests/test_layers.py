"""The package's import graph: no cycles, and lower layers never reach upper ones.

The graph is read from the source (``ast``), not from ``sys.modules``, so it
covers every module whatever is installed here, and it counts imports made
inside functions too: a lazy import is still a dependency (the cycle
``cells`` <-> ``validation`` was one). Imports under ``if TYPE_CHECKING:`` are
left out. New modules are picked up as they appear; only the short lists of
lower-layer and upper-layer modules below are written by hand.
"""
import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import lstm_numba

PKG = "lstm_numba"
ROOT = Path(lstm_numba.__file__).resolve().parent

#: The bottom of the package: facts, checks, the oracle, the harness.
LOWER = ("_checks", "cells", "validation", "reference", "measure")
#: What those must never reach, directly or through another module: the public
#: API, the backend registry (and so every backend), the tools built on them.
UPPER = ("api", "backends", "compare", "report", "__main__")
#: The package's front door and command line import everything; nothing imports them.
ENTRY = (PKG, f"{PKG}.__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))
            if "__pycache__" not in p.parts}


def _is_type_checking(node) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, known) -> set[str]:
    """Package modules that module ``name`` imports (anywhere in its body)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and _is_type_checking(node) for b in node.body for n in ast.walk(b)}
    out = set()

    def add(target):
        # the deepest existing module named by ``target`` (a name may be a function)
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target.startswith(PKG):
            out.add(target)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {n: _imports(n, p, mods) for n, p in mods.items()}


def _cycles(graph) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _reach(graph, start) -> dict[str, str]:
    """Modules reachable from ``start``, each with the module that imports it."""
    seen, todo = {}, [start]
    while todo:
        v = todo.pop()
        for w in graph.get(v, ()):
            if w not in seen and w != start:
                seen[w] = v
                todo.append(w)
    return seen


def _path(seen, start, end) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_graph_is_read():
    """The parser finds the edges that are known to exist (it could not silently see none)."""
    g = _graph()
    assert f"{PKG}.cells" in g[f"{PKG}.validation"]             # module level
    assert f"{PKG}.validation" in g[f"{PKG}.backends"]          # inside a method
    assert f"{PKG}.cells" in g[f"{PKG}.measure"]
    assert len(g) >= 15


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_imports(name):
    """Each module imports on its own (optional dependencies may be missing: that is
    an ImportError naming them, never a circular-import error)."""
    try:
        importlib.import_module(name)
    except ImportError as e:
        assert "circular import" not in str(e) and "partially initialized" not in str(e), e
        assert e.name and not e.name.startswith(PKG), e       # a module of ours is missing
        pytest.skip(f"{name}: optional dependency {e.name} missing: {e}")


def test_no_import_cycles():
    g = {n: e for n, e in _graph().items() if n not in ENTRY}
    assert _cycles({n: e - set(ENTRY) for n, e in g.items()}) == []


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_never_reach_upper_ones(lower):
    g = _graph()
    start = f"{PKG}.{lower}"
    if start not in g:
        pytest.fail(f"{start} is listed as a lower layer but does not exist")
    seen = _reach(g, start)
    bad = [m for m in seen if any(m == f"{PKG}.{u}" or m.startswith(f"{PKG}.{u}.")
                                  for u in UPPER) or m in ENTRY]
    assert not bad, "; ".join(_path(seen, start, m) for m in sorted(bad))


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_pkgutil_agrees_on_the_top_level_modules():
    """The ast walk sees every module pkgutil does (no file left out)."""
    names = {f"{PKG}.{m.name}" for m in pkgutil.iter_modules(lstm_numba.__path__)}
    assert names <= set(_modules())


#: Calls that numba compiles through scipy's BLAS wrappers (scipy is not a dependency).
_NEEDS_SCIPY = {"dot", "matmul", "vdot", "inner", "outer", "linalg", "kron", "tensordot",
                "einsum"}


def _jit_decorated(fn) -> bool:
    for d in fn.decorator_list:
        d = d.func if isinstance(d, ast.Call) else d
        name = d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", "")
        if "jit" in name:
            return True
    return False


def test_no_compiled_code_needs_scipy():
    """No @njit (or @cuda.jit) function multiplies through np.dot, @ or np.linalg:
    numba lowers those through scipy, which the package no longer depends on."""
    bad, seen = [], 0
    for name, path in _modules().items():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef) and _jit_decorated(fn):
                seen += 1
                for n in ast.walk(fn):
                    if (isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult)) or (
                            isinstance(n, ast.Attribute) and n.attr in _NEEDS_SCIPY):
                        bad.append(f"{name}.{fn.name} line {n.lineno}")
    assert seen >= 10           # the scan does see the kernels
    assert not bad, bad

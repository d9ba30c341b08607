"""tools/asv_offline.py: asv's published HTML renders with the network off.

The unit tests rewrite asv's own packaged index.html. The browser tests
publish the committed results fixture with ``asv publish``, serve it on
127.0.0.1, and load it in headless Chromium with every host name but
127.0.0.1 unresolvable (as on an air-gapped machine): the unmodified page
must fall over to asv's "failed to load" page (the control: the check can
fail), the rewritten one must draw its benchmark grid. They skip, saying
why, where Chromium is not installed (.ci/run installs it).
"""
import functools
import hashlib
import http.server
import importlib.util
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "asv_results"

_spec = importlib.util.spec_from_file_location("asv_offline", ROOT / "tools" / "asv_offline.py")
asv_offline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(asv_offline)


def _asv_www() -> Path:
    asv = pytest.importorskip("asv", reason="asv is not installed (pip install '.[bench]')")
    return Path(asv.__file__).parent / "www"


def test_asv_index_loads_only_known_cdn_files():
    html = (_asv_www() / "index.html").read_text(encoding="utf-8")
    refs = asv_offline.external_refs(html)
    assert len(refs) == len(asv_offline.URL_MAP)        # 9 scripts + 1 stylesheet
    assert set(refs) == set(asv_offline.URL_MAP)


def test_rewrite_leaves_no_external_script_or_stylesheet():
    html = (_asv_www() / "index.html").read_text(encoding="utf-8")
    new = asv_offline.rewrite(html)
    assert asv_offline.external_refs(new) == []
    assert "integrity=" not in new and "cdnjs" not in new
    assert asv_offline.rewrite(new) == new              # idempotent
    # The navigation link to asv's home page is not a resource: kept.
    assert "https://github.com/airspeed-velocity/asv/" in new


def test_rewrite_refuses_an_unknown_external_script():
    html = '<script src="https://cdn.example.org/new-lib.js"></script>'
    with pytest.raises(ValueError, match=r"new-lib\.js"):
        asv_offline.rewrite(html)


def test_manifest_checksums_match_the_vendored_files():
    vendor = ROOT / "tools" / "vendor" / "asv"
    manifest = (vendor / "MANIFEST.md").read_text(encoding="utf-8")
    sums = dict((p, h) for h, p in re.findall(r"^([0-9a-f]{64})  (\S+)$", manifest, re.M))
    files = sorted(str(p.relative_to(vendor)) for d in ("js", "css", "fonts")
                   for p in (vendor / d).iterdir())
    assert sorted(sums) == files
    for rel, digest in sums.items():
        assert hashlib.sha256((vendor / rel).read_bytes()).hexdigest() == digest, rel
    for target in asv_offline.URL_MAP.values():
        assert (vendor / target).is_file(), target
    assert len(list((vendor / "licenses").iterdir())) >= 6


def test_make_offline_needs_a_published_page(tmp_path):
    with pytest.raises(FileNotFoundError, match="asv publish"):
        asv_offline.make_offline(tmp_path)
    assert asv_offline.main([str(tmp_path)]) == 1


# ------------------------------------------------------------ in a browser

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (apt-get install -y chromium; .ci/run does)")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The results fixture published by asv into a fresh html directory."""
    _asv_www()
    tmp = tmp_path_factory.mktemp("asvpub")
    results = tmp / "results"
    shutil.copytree(FIXTURE, results)
    conf = tmp / "asv.conf.json"
    conf.write_text(
        '{"version": 1, "project": "lstm-numba", "repo": "%s", "dvcs": "git", '
        '"branches": ["main"], "environment_type": "virtualenv", '
        '"benchmark_dir": "%s", "results_dir": "%s", "html_dir": "%s", "env_dir": "%s"}'
        % (ROOT, ROOT / "benchmarks", results, tmp / "html", tmp / "env"))
    asv = Path(sys.executable).with_name("asv")
    cmd = [str(asv)] if asv.exists() else [sys.executable, "-m", "asv"]
    proc = subprocess.run(cmd + ["publish", "--config", str(conf)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp / "html" / "index.html").is_file()
    return tmp / "html"


def _render(html_dir: Path, profile: Path) -> str:
    """The DOM after scripts ran, loaded over 127.0.0.1 with no other host reachable."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html_dir))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        proc = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={profile}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--virtual-time-budget=8000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_unmodified_asv_page_fails_offline(published, tmp_path):
    """The control: asv's page as published cannot load its CDN scripts here."""
    plain = tmp_path / "plain"
    shutil.copytree(published, plain)
    dom = _render(plain, tmp_path / "profile")
    assert "failed to load" in dom


def test_offline_page_draws_the_benchmark_grid(published, tmp_path):
    html = tmp_path / "html"
    shutil.copytree(published, html)
    assert asv_offline.main([str(html)]) == 0
    assert asv_offline.external_refs((html / "index.html").read_text(encoding="utf-8")) == []
    dom = _render(html, tmp_path / "profile")
    assert "failed to load" not in dom
    # asv's summary grid: one group per benchmark file, one plot per benchmark.
    groups = re.findall(r'class="benchmark-group"', dom)
    plots = re.findall(r'class="benchmark-plot"', dom)
    assert len(groups) >= 5 and len(plots) >= 15, (len(groups), len(plots))
    assert "bench_seq_len" in dom

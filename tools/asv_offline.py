"""Make asv's published HTML work with no network: serve its JS/CSS locally.

asv 0.6.x's ``index.html`` loads jQuery, flot (+ plugins), Bootstrap,
blueimp-md5 and stupidtable from CDNs (asv 0.5.1 vendored them; asv PR #1149
removed that in 0.6.0). On an air-gapped benchmark host the page then shows
"One or more external (JavaScript) dependencies of asv failed to load" and
draws nothing. This step, run after ``asv publish`` (``make bench`` and
``make publish`` do), copies the files vendored in ``tools/vendor/asv/`` (see
its MANIFEST.md: sources, versions, licences, checksums) into
``<html_dir>/vendor/`` and rewrites ``index.html`` to load them from there.

It is idempotent, and it fails loudly (exit 1, naming the URL) when the page
loads an external script or stylesheet it does not know -- e.g. after an asv
upgrade -- rather than leave a page that silently breaks offline.

Usage::

    python tools/asv_offline.py [.asv/html]
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "vendor" / "asv"

#: CDN URL (as written in asv 0.6.6's index.html, without query) -> vendored file.
URL_MAP = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "js/jquery-3.3.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js":
        "js/jquery.flot-0.8.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        "js/jquery.flot.time-0.8.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "js/jquery.flot.selection-0.8.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "js/jquery.flot.categories-0.8.3.min.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        "js/jquery.flot.orderBars-1.0.0.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        "js/stupidtable-1.1.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        "js/md5-2.19.0.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        "js/bootstrap-3.1.1.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        "css/bootstrap-3.1.1.min.css",
}

# <script ... src="..."> and <link ... href="..."> tags (asv writes one per line).
_TAG = re.compile(r"<(script|link)\b[^>]*?\b(src|href)=\"([^\"]+)\"[^>]*>", re.I)
# Attributes that only make sense for a CDN copy (SRI would also reject a file
# that differs in bytes from the CDN's, e.g. flot's own minified release files).
_CDN_ATTRS = re.compile(r"\s+(integrity|crossorigin|referrerpolicy)=\"[^\"]*\"", re.I)


def external_refs(html: str) -> list[str]:
    """URLs of scripts and stylesheets that ``html`` loads from the network."""
    refs = []
    for m in _TAG.finditer(html):
        tag, url = m.group(0), m.group(3)
        if m.group(1).lower() == "link" and "stylesheet" not in tag.lower():
            continue        # navigation links (<link rel="alternate">, icons) load nothing
        if re.match(r"^(https?:)?//", url, re.I):
            refs.append(url)
    return refs


def rewrite(html: str) -> str:
    """``html`` with every known CDN script/stylesheet pointed at ``vendor/``.

    Raises
    ------
    ValueError
        If the page loads an external script or stylesheet not in :data:`URL_MAP`.
    """
    unknown = [u for u in external_refs(html) if u not in URL_MAP]
    if unknown:
        raise ValueError("asv's index.html loads external files this tool does not "
                         f"vendor: {unknown}; add them to tools/vendor/asv and URL_MAP")

    def local(m):
        tag, url = m.group(0), m.group(3)
        if url not in URL_MAP:
            return tag
        tag = _CDN_ATTRS.sub("", tag)
        return tag.replace(f'"{url}"', f'"vendor/{URL_MAP[url]}"')

    return _TAG.sub(local, html)


def make_offline(html_dir) -> Path:
    """Vendor the assets into ``html_dir/vendor`` and rewrite its index.html.

    Returns the path of the rewritten index.html.
    """
    html_dir = Path(html_dir)
    index = html_dir / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: run `asv publish` first")
    text = index.read_text(encoding="utf-8")
    new = rewrite(text)
    dest = html_dir / "vendor"
    for sub in ("js", "css", "fonts", "licenses"):
        shutil.copytree(VENDOR / sub, dest / sub, dirs_exist_ok=True)
    shutil.copy2(VENDOR / "MANIFEST.md", dest / "MANIFEST.md")
    missing = [p for p in re.findall(r'"vendor/([^"]+)"', new) if not (dest / p).is_file()]
    if missing:
        raise FileNotFoundError(f"vendored files missing: {missing}")
    if new != text:
        index.write_text(new, encoding="utf-8")
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", nargs="?", default=".asv/html",
                    help="asv's html_dir (default .asv/html)")
    args = ap.parse_args(argv)
    try:
        index = make_offline(args.html_dir)
    except (OSError, ValueError) as e:
        print(f"asv_offline: {e}", file=sys.stderr)
        return 1
    print(f"asv_offline: {index} now loads its scripts and styles from "
          f"{index.parent / 'vendor'} (works without network)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

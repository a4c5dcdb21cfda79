"""Packaging metadata and what the sdist carries.

The sdist must carry every file the README points to (docs/, bench/,
tools/): checked by matching each path the README names against
MANIFEST.in's include rules.  pyproject.toml names the supported Python
versions, a development status and an author.
"""
import fnmatch
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _glob(path: str, pattern: str) -> bool:
    """MANIFEST.in's include/exclude glob: ``*`` and ``?`` stay within one
    path component, as setuptools translates them."""
    rx = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, path) is not None


def _included(path: str, rules) -> bool:
    ok = False
    for kind, args in rules:
        if kind == "include" and any(_glob(path, a) for a in args):
            ok = True
        elif kind == "recursive-include":
            d, pats = args[0].rstrip("/"), args[1:]
            if path.startswith(d + "/") and any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in pats):
                ok = True
        elif kind == "exclude" and any(_glob(path, a) for a in args):
            ok = False
    return ok


@pytest.mark.skipif(not (ROOT / "MANIFEST.in").exists(), reason="not a source checkout")
def test_sdist_carries_what_the_readme_links():
    rules = []
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        parts = line.split("#")[0].split()
        if parts:
            rules.append((parts[0], parts[1:]))
    readme = (ROOT / "README.md").read_text()
    paths = sorted(set(re.findall(r"\b((?:docs|bench|tools)/[\w.\-]+\.(?:md|txt|sh|py))\b", readme)))
    assert any(p.startswith("docs/") for p in paths)
    for p in paths:
        assert (ROOT / p).exists(), f"README names {p}, which does not exist"
        assert _included(p, rules), f"README names {p}, which MANIFEST.in leaves out of the sdist"


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="not a source checkout")
def test_project_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cls = meta["classifiers"]
    assert any(c.startswith("Development Status ::") for c in cls)
    lo = int(meta["requires-python"].split(">=3.")[1])
    for minor in range(lo, 15):
        assert f"Programming Language :: Python :: 3.{minor}" in cls
    assert meta.get("authors")


@pytest.mark.skipif(not (ROOT / "MANIFEST.in").exists(), reason="not a source checkout")
def test_sdist_carries_every_build_source():
    """Every file the extensions are built from (.pyx, the .pxi they
    include, .pxd, the C sources and headers of _src/) is in the sdist: a
    missing one builds here and fails from the sdist (tools/build_wheels.sh
    builds and installs it)."""
    rules = []
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        parts = line.split("#")[0].split()
        if parts:
            rules.append((parts[0], parts[1:]))
    pkg = ROOT / "src" / "fastloss"
    sources = [p for ext in ("*.pyx", "*.pxi", "*.pxd") for p in pkg.glob(ext)]
    sources += [p for ext in ("*.c", "*.h") for p in (pkg / "_src").glob(ext)]
    included = set()
    for pyx in pkg.glob("*.pyx"):
        included.update(re.findall(r'^include\s+"([^"]+)"', pyx.read_text(), flags=re.M))
    for name in included:
        assert (pkg / name).exists(), f"a .pyx includes {name}, which does not exist"
        sources.append(pkg / name)
    assert any(p.suffix == ".pyx" for p in sources) and any(p.suffix == ".h" for p in sources)
    for p in sorted(set(sources)):
        rel = p.relative_to(ROOT).as_posix()
        assert _included(rel, rules), f"{rel} is built from, and MANIFEST.in leaves it out of the sdist"

"""The Python examples of docs/*.md run as written, without warnings.

Each ```python block of each page is one test (run in a fresh namespace,
blocks of a page in order are independent); a block that imports an
optional library (torch, xgboost, lightgbm) is skipped without it.  Any
warning an example raises is an error: a deprecated call in the docs
(LightGBM's ``eval_set`` in 4.7) is caught here.  Blocks that show an
interactive session (``>>>``) are output listings, not run.
"""
import pathlib
import re
import warnings

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
BLOCKS = []
RUN_ELSEWHERE = {"dask.md"}  # tests/test_dask_story.py (its story at a small size; full size is slow)
for page in sorted(DOCS.glob("*.md")) if DOCS.exists() else []:
    if page.name in RUN_ELSEWHERE:
        continue
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
        if not code.lstrip().startswith(">>>"):
            BLOCKS.append(pytest.param(page.name, code, id=f"{page.stem}-{i}"))


def test_docs_have_examples():
    assert any(p.values[0] == "boosting.md" for p in BLOCKS)


@pytest.mark.parametrize("page, code", BLOCKS)
def test_docs_example_runs(page, code, capsys):
    for mod in ("torch", "xgboost", "lightgbm"):
        if re.search(rf"^\s*import {mod}\b|import [\w, ]*\b{mod}\b|fastloss\.{mod}\b", code, re.M):
            pytest.importorskip(mod)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, f"docs/{page}", "exec"), {})

"""The README's Python examples run as written."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if README.exists() else []


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i, capsys):
    code = BLOCKS[i]
    for mod in ("torch", "xgboost", "lightgbm", "dask", "jax", "optax"):
        if re.search(rf"^\s*import {mod}\b|import [\w, ]*\b{mod}\b|fastloss\.{mod}\b", code, re.M):
            pytest.importorskip(mod)
    exec(compile(code, f"README.md block {i}", "exec"), {})

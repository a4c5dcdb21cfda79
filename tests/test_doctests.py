"""Run every docstring example of the installed fastloss package as a doctest.

Modules are discovered with pkgutil.walk_packages on fastloss.__path__;
compiled extension modules are skipped (their examples, if any, live in the
Python wrappers).  One test per module; a module without examples passes.
"""
import doctest
import importlib
import importlib.machinery
import pkgutil

import numpy as np
import pytest

import fastloss

_EXT = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _discover():
    names = ["fastloss"]
    for info in pkgutil.walk_packages(fastloss.__path__, prefix="fastloss.", onerror=lambda name: None):
        names.append(info.name)
    return sorted(set(names))


def _is_compiled(mod):
    f = getattr(mod, "__file__", None) or ""
    return f.endswith(_EXT) or not f.endswith(".py")


MODULES = _discover()
# Modules whose docstrings are known to carry examples: these must not be skipped or empty.
MUST_HAVE_EXAMPLES = {"fastloss", "fastloss._config", "fastloss._pointwise_losses"}


def test_discovery_found_the_core_modules():
    for m in MUST_HAVE_EXAMPLES:
        assert m in MODULES, (m, MODULES)


@pytest.mark.parametrize("modname", MODULES)
def test_module_doctests(modname):
    # the adapters need their optional library (a test extra)
    for lib in ("torch", "xgboost", "lightgbm", "dask", "jax"):
        if modname == f"fastloss.{lib}":
            pytest.importorskip(lib)
    if modname == "fastloss.plot":
        pytest.importorskip("matplotlib")
    mod = importlib.import_module(modname)
    if _is_compiled(mod):
        pytest.skip(f"{modname} is a compiled module")
    old_threads = fastloss._config._num_threads
    with np.printoptions(legacy=False):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
                              verbose=False, report=True, raise_on_error=False)
    # a doctest must not leave global state behind
    assert fastloss._config._num_threads == old_threads
    assert res.failed == 0, f"{res.failed} of {res.attempted} doctest examples failed in {modname}"
    if modname in MUST_HAVE_EXAMPLES:
        assert res.attempted > 0, f"no doctest examples found in {modname}"

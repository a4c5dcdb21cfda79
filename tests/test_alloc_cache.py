"""The block cache behind fastloss's own arrays (fastloss._alloc, _cache).

What it must guarantee: the arrays are ordinary owned writeable arrays; a
block is handed out again only after its array (and every view, tensor or
other holder) is gone; the handler is installed only around fastloss's own
allocations; it is bounded, switchable, thread-safe, fork-safe, safe at
interpreter shutdown, and does not leak.
"""
import gc
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import _alloc

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

CACHE = "fastloss_block_cache"
BIG = 1 << 18          # float32 elements: 1 MiB, the smallest cached request
F32 = np.dtype(np.float32)


@pytest.fixture(autouse=True)
def _default_limit():
    old = fl.set_cache_limit(None)
    yield
    fl.set_cache_limit(old)


def _data(n, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)


def _expected_mse_grad(x, y):
    buf = np.empty_like(x)
    fl.mse_loss(x, y, return_grad=True, out=buf)
    return buf


def _addr(a):
    return a.__array_interface__["data"][0]


def _disjoint(arrays):
    spans = sorted((_addr(a), _addr(a) + a.nbytes) for a in arrays)
    return all(e <= s for (_, e), (s, _) in zip(spans, spans[1:]))


def _run(code, env=None, timeout=120):
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=e, timeout=timeout)


# ------------------------------------------------------------------ the arrays

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_outputs_are_ordinary_owned_arrays_from_the_cache(dtype):
    x, y = _data(BIG, dtype)
    v, g = fl.mse_loss(x, y, return_grad=True)
    assert get_handler_name(g) == CACHE
    assert g.flags.owndata and g.flags.writeable and g.flags.c_contiguous and g.flags.aligned
    assert g.base is None and g.dtype == dtype and g.shape == x.shape
    np.testing.assert_array_equal(g, _expected_mse_grad(x, y))
    g[:] = 1  # writeable for real
    assert get_handler_name() != CACHE  # the handler was put back


def test_small_outputs_use_numpys_own_allocator():
    x, y = _data(1000)
    v, g = fl.mse_loss(x, y, return_grad=True)
    assert get_handler_name(g) == get_handler_name()
    assert get_handler_name(g) != CACHE


def test_every_output_array_of_a_call_comes_from_the_cache():
    x, y = _data(BIG)
    g, h = fl.MSELoss(reduction="none").grad_hess(x, y)
    lo, g2 = fl.mse_loss(x, y, reduction="none", return_grad=True)
    var = np.full(BIG, 0.5, np.float32)
    gv = fl.gaussian_nll_loss(x, y, var, return_grad=True)
    for a in (g, h, lo, g2) + tuple(gv[1:]):
        assert get_handler_name(a) == CACHE
    xr = np.random.default_rng(0).standard_normal((BIG // 16, 16)).astype(np.float32)
    t = np.zeros(BIG // 16, np.int64)
    lr, gr = fl.cross_entropy(xr, t, reduction="none", return_grad=True)
    assert get_handler_name(gr) == CACHE  # the row driver's gradient
    if hasattr(fl, "trimmed"):           # the trimmed/winsorized driver's per-element loss
        lt, gt = fl.trimmed(x, y, fl.MSELoss(), trim=0.1, reduction="none", return_grad=True)
        assert get_handler_name(lt) == CACHE and get_handler_name(gt) == CACHE
    assert _disjoint([g, h, lo, g2, gr, *gv[1:]])


def test_features_and_sequence_outputs_come_from_the_cache():
    # the row-over-features driver (every operand's gradient, the per-row
    # losses), the in-batch losses, the elementwise pair losses and CTC
    rng = np.random.default_rng(1)
    a, p, n = (rng.standard_normal((BIG // 16, 16)).astype(np.float32) for _ in range(3))
    lo, *gt = fl.triplet_margin_loss(a, p, n, reduction="none", return_grad=True)
    x1, x2 = rng.standard_normal((2, BIG)).astype(np.float32)
    sgn = np.where(x1 > 0, 1.0, -1.0).astype(np.float32)
    _, *gm = fl.margin_ranking_loss(x1, x2, sgn, return_grad=True)
    E = rng.standard_normal((BIG // 64, 64)).astype(np.float32)
    _, gb = fl.batch_hard_triplet_loss(E, np.arange(BIG // 64) % 7, return_grad=True)
    T, N, C = 64, 8, BIG // (64 * 8)
    lp = rng.standard_normal((T, N, C)).astype(np.float32)
    _, gc_ = fl.ctc_loss(lp, np.ones((N, 5), np.int64), [T] * N, [5] * N, from_logits=True, return_grad=True)
    outs = [*gt, *gm, gb, gc_]
    for g in outs:
        assert get_handler_name(g) == CACHE
        assert g.flags.owndata and g.flags.writeable and g.base is None
    assert get_handler_name(lo) == get_handler_name()  # (N / 16 float32 losses: below MIN_BYTES)
    assert _disjoint(outs)
    # and the values are those of caller-given buffers
    bufs = tuple(np.empty_like(a) for _ in range(3))
    _, *gt2 = fl.triplet_margin_loss(a, p, n, reduction="none", return_grad=True, out=bufs)
    for g, g2 in zip(gt, gt2):
        np.testing.assert_array_equal(g, g2)


def test_a_block_is_reused_only_after_its_array_is_gone():
    x, y = _data(BIG)
    want = _expected_mse_grad(x, y)
    _alloc.trim()
    _, g1 = fl.mse_loss(x, y, return_grad=True)
    _, g2 = fl.mse_loss(x, y, return_grad=True)          # g1 alive: a different block
    assert _disjoint([g1, g2])
    g1[:] = -7.0
    _, g3 = fl.mse_loss(x, y, return_grad=True)
    assert _disjoint([g1, g2, g3])
    assert (g1 == -7.0).all()
    np.testing.assert_array_equal(g2, want)
    addr = _addr(g1)
    hits = fl.cache_info()["hits"]
    del g1
    _, g4 = fl.mse_loss(x, y, return_grad=True)           # now g1's block comes back
    assert fl.cache_info()["hits"] == hits + 1
    assert _addr(g4) == addr
    np.testing.assert_array_equal(g4, want)


def test_views_keep_the_block_alive():
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    view = g[::2]
    keep = view.copy()
    del g
    for _ in range(3):
        fl.mse_loss(y, x, return_grad=True)
    np.testing.assert_array_equal(view, keep)


def test_torch_from_numpy_keeps_the_block_alive():
    torch = pytest.importorskip("torch")
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    t = torch.from_numpy(g)
    keep = t.clone()
    addr = _addr(g)
    del g
    outs = [fl.mse_loss(y, x, return_grad=True)[1] for _ in range(3)]
    assert all(_addr(o) != addr for o in outs)
    assert torch.equal(t, keep)
    del t, outs


def test_torch_adapter_saved_gradients_survive_later_calls():
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x1, y1 = (torch.from_numpy(a) for a in _data(BIG, seed=1))
    x2, y2 = (torch.from_numpy(a) for a in _data(BIG, seed=2))
    x1.requires_grad_(True)
    x2.requires_grad_(True)
    l1 = flt.mse_loss(x1, y1)
    l2 = flt.mse_loss(x2, y2)          # its saved gradient must not take l1's block
    for _ in range(3):                 # nor the arrays of calls in between
        flt.mse_loss(x2.detach(), y1)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(x1.grad, 2 * (x1.detach() - y1) / BIG, rtol=1e-6, atol=0)
    torch.testing.assert_close(x2.grad, 2 * (x2.detach() - y2) / BIG, rtol=1e-6, atol=0)
    out = flt.mse_loss(x1.detach(), y1, reduction="none")   # a per-element loss from the cache
    torch.testing.assert_close(out, (x1.detach() - y1) ** 2, rtol=1e-6, atol=0)


def test_resize_keeps_the_data():
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    want = g.copy()
    g.resize((3 * BIG,), refcheck=False)          # grows: a new block, data copied
    np.testing.assert_array_equal(g[:BIG], want)
    g.resize((BIG - 100,), refcheck=False)        # shrinks a lot: a smaller block
    np.testing.assert_array_equal(g, want[:BIG - 100])
    g.resize((10,), refcheck=False)               # below the cache's minimum: malloc
    np.testing.assert_array_equal(g, want[:10])
    g.resize((BIG,), refcheck=False)              # and back up
    np.testing.assert_array_equal(g[:10], want[:10])
    del g


def test_handler_restored_when_the_allocation_fails():
    with pytest.raises(MemoryError):
        _alloc.empty((1 << 47,), np.dtype(np.float64))   # 1 PiB
    assert get_handler_name() != CACHE
    a = np.empty(BIG, np.float32)
    assert get_handler_name(a) != CACHE


# ------------------------------------------------------------------ the limit

def test_limit_zero_disables_and_releases():
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    del g
    assert fl.cache_info()["idle_blocks"] >= 1
    fl.set_cache_limit(0)
    info = fl.cache_info()
    assert info["idle_bytes"] == 0 and info["idle_blocks"] == 0 and info["limit"] == 0
    _, g = fl.mse_loss(x, y, return_grad=True)
    assert get_handler_name(g) != CACHE
    np.testing.assert_array_equal(g, _expected_mse_grad(x, y))


def test_arrays_outlive_a_disabled_cache():
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    keep = g.copy()
    fl.set_cache_limit(0)                        # releases the idle blocks earlier tests left
    released = fl.cache_info()["released"]
    np.testing.assert_array_equal(g, keep)
    del g                                        # freed through the cache's handler: released
    info = fl.cache_info()
    assert info["released"] == released + 1 and info["idle_bytes"] == 0


def test_explicit_limit_bounds_the_idle_bytes():
    fl.set_cache_limit(3 << 20)
    arrays = [_alloc.empty((BIG,), F32) for _ in range(8)]   # 8 x 1 MiB
    assert all(get_handler_name(a) == CACHE for a in arrays)
    del arrays
    info = fl.cache_info()
    assert 0 < info["idle_bytes"] <= 3 << 20
    assert info["limit"] == 3 << 20 and info["setting"] == 3 << 20
    fl.set_cache_limit(1 << 20)                  # lowering it evicts at once
    assert fl.cache_info()["idle_bytes"] <= 1 << 20


def test_automatic_limit_follows_the_recent_requests():
    fl.set_cache_limit(None)
    a = _alloc.empty((4 * BIG,), F32)
    info = fl.cache_info()
    assert info["setting"] == "auto"
    assert info["limit"] >= _alloc.AUTO_MULT * a.nbytes
    assert info["limit"] <= _alloc.ceiling()
    big = [_alloc.empty((8 * BIG,), F32) for _ in range(6)]   # 6 x 8 MiB live
    del big
    info = fl.cache_info()
    assert info["idle_bytes"] <= info["limit"]
    assert info["idle_blocks"] <= _alloc.SLOTS
    del a


def test_best_fit_does_not_hand_a_huge_block_to_a_small_request():
    _alloc.trim()
    a = _alloc.empty((16 * BIG,), F32)
    addr = _addr(a)
    del a
    b = _alloc.empty((BIG,), F32)            # 1 MiB: the 16 MiB block is not used
    assert _addr(b) != addr
    c = _alloc.empty((16 * BIG - 1000,), F32)  # nearly 16 MiB: it is
    assert _addr(c) == addr
    del b, c


@pytest.mark.parametrize("bad", ["1", 1.5, True, [1]])
def test_set_cache_limit_type_errors(bad):
    with pytest.raises(TypeError, match=r"^set_cache_limit: nbytes must be a non-negative integer \(bytes\) or None, got "):
        fl.set_cache_limit(bad)


def test_set_cache_limit_negative():
    with pytest.raises(ValueError, match=r"^set_cache_limit: nbytes must be a non-negative integer \(bytes\) or None, got -1$"):
        fl.set_cache_limit(-1)


def test_set_cache_limit_returns_the_previous_setting():
    assert fl.set_cache_limit(np.int64(5 << 20)) is None
    assert fl.set_cache_limit(0) == 5 << 20
    assert fl.set_cache_limit(None) == 0


def test_show_config_reports_the_cache():
    cfg = fl.show_config(file=False)
    assert "cache" in cfg and "limit" in cfg["cache"]
    fl.set_cache_limit(0)
    assert fl.show_config(file=False)["cache"].startswith("disabled")


@pytest.mark.parametrize("text, want", [("0", 0), ("64M", 64 << 20), ("1g", 1 << 30), ("123456", 123456),
                                        ("512kb", 512 << 10)])
def test_environment_variable(text, want):
    r = _run("import fastloss as fl; print(fl.cache_info()['setting'])", {"FASTLOSS_CACHE_BYTES": text})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(want)


@pytest.mark.parametrize("text", ["abc", "-5", "1.5G"])
def test_environment_variable_invalid_warns(text):
    r = _run("import warnings; warnings.simplefilter('always')\n"
             "import fastloss as fl; print(fl.cache_info()['setting'])", {"FASTLOSS_CACHE_BYTES": text})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "auto"
    assert ("fastloss: FASTLOSS_CACHE_BYTES must be a non-negative number of bytes "
            f"(optionally with K, M or G), got {text!r}; using the default") in r.stderr


# ------------------------------------------------------------------ threads, fork, shutdown

def test_concurrent_python_threads():
    n_workers, rounds = 4, 60
    live0 = fl.cache_info()["live_blocks"]
    inputs = [_data(BIG + 1000 * k, seed=k) for k in range(n_workers)]
    wants = [_expected_mse_grad(x, y) for x, y in inputs]
    handoff = []                # arrays freed by another thread than their caller
    lock = threading.Lock()
    errors = []

    def work(k):
        x, y = inputs[k]
        try:
            for i in range(rounds):
                _, g = fl.mse_loss(x, y, return_grad=True, n_threads=1 + (i % 2))
                if not np.array_equal(g, wants[k]):
                    errors.append((k, i))
                with lock:
                    handoff.append(g)
                    if len(handoff) > 6:
                        handoff.pop(0)
                del g
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert _disjoint(handoff)
    handoff.clear()
    info = fl.cache_info()
    assert info["live_blocks"] == live0, info
    assert info["idle_bytes"] <= info["limit"]


def test_fork_child_uses_the_cache():
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    import multiprocessing as mp

    x, y = _data(BIG)
    want = _expected_mse_grad(x, y)
    _, live = fl.mse_loss(x, y, return_grad=True)
    _, idle = fl.mse_loss(x, y, return_grad=True)
    del idle
    stop = threading.Event()

    def churn():               # another thread in the allocator while we fork
        while not stop.is_set():
            _alloc.empty((BIG,), F32)

    t = threading.Thread(target=churn)
    t.start()
    try:
        ctx = mp.get_context("fork")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            with ctx.Pool(1) as pool:
                ok = pool.apply_async(_child_check, (x, y, want)).get(timeout=60)
    finally:
        stop.set()
        t.join()
    assert ok
    np.testing.assert_array_equal(live, want)


def _child_check(x, y, want):
    # one thread: GNU libgomp's thread pool does not survive fork (a known
    # libgomp limitation, not the cache's)
    for _ in range(5):
        _, g = fl.mse_loss(x, y, return_grad=True, n_threads=1)
        if not np.array_equal(g, want):
            return False
        del g
    return True


def test_arrays_alive_at_interpreter_shutdown():
    r = _run("""
        import numpy as np, fastloss as fl, gc
        x = np.ones(1 << 20, np.float32); y = np.zeros_like(x)
        kept = [fl.mse_loss(x, y, return_grad=True)[1] for _ in range(3)]
        class Cycle: pass
        c = Cycle(); c.me = c; c.g = fl.mse_loss(x, y, return_grad=True)[1]
        del c
        fl.set_cache_limit(0)
        fl.set_cache_limit(None)
        import fastloss._alloc
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok" and r.stderr == "", r.stderr


def _rss_bytes():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS from /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="under AddressSanitizer (tools/sanitize.sh) RSS counts its shadow memory of every "
                           "mapping made and unmapped (11 MiB over these calls), not the cache's blocks")
def test_rss_flat_over_ten_thousand_large_calls():
    sizes = [BIG, BIG + 4096, 2 * BIG, 3 * BIG // 2]
    data = [_data(n, seed=i) for i, n in enumerate(sizes)]
    gc.collect()

    def calls(k):
        for i in range(k):
            x, y = data[i % len(data)]
            if i % 3:
                fl.mse_loss(x, y, return_grad=True, n_threads=1)
            else:
                fl.MSELoss(reduction="none", n_threads=1).grad_hess(x, y)

    calls(200)
    live0 = fl.cache_info()["live_blocks"]
    before = _rss_bytes()
    calls(10_000)
    grown = _rss_bytes() - before
    info = fl.cache_info()
    assert info["live_blocks"] == live0
    assert info["idle_bytes"] <= info["limit"]
    assert grown < 8 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over 10^4 calls"


@pytest.mark.skipif(sys.platform == "win32", reason="the blocks are mapped with mmap (page-aligned) on POSIX only")
def test_large_blocks_start_560_bytes_after_numpys_in_their_page():
    # a fresh gradient from the cache begins at byte 576 of a page, NumPy's own large arrays (malloc's
    # mappings) at byte 16: 4K aliasing between the kernel's loads of the input and its stores of the
    # gradient is avoided (fl_alloc.c, FL_SKEW)
    x, y = _data(BIG)
    _, g = fl.mse_loss(x, y, return_grad=True)
    assert get_handler_name(g) == CACHE
    assert g.ctypes.data % 4096 == 576
    assert g.ctypes.data % 64 == 0

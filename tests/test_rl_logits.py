"""REINFORCE and PPO from logits and actions (issue 14), PPO's statistics
from the kernel's pass and the fused TD target.

The row kernels (fl_rows_rl.h) against the float64 NumPy reference
(fastloss.reference.generative), the reference's gradient against central
finite differences, and the kernels against the same objective written in
torch ops: torch.log_softmax and torch.distributions.Categorical's
entropy, with autograd's gradient.  PyTorch has no policy-gradient or PPO
loss (nor does optax or Keras), so the tests write the published formulas
(Williams 1992, Schulman et al. 2017 eq. 7 and 9, Ye et al. 2020's dual
clip) in torch ops.  Also: thread-count bit identity of the value, the
gradient and the statistics; extreme and non-finite logits; every error
message."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import _rows
from fastloss import reference as R
from _close import F32_TOL, F64_TOL, _close, _tol  # noqa: F401  (tests/_close.py)
from _numdiff import central_diff  # tests/_numdiff.py (pytest puts tests/ on sys.path)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PG, PPO = fl.policy_gradient_loss_from_logits, fl.ppo_clip_loss_from_logits


def _case(N=61, A=7, dt=np.float64, seed=14, scale=2.0):
    rng = np.random.default_rng(seed)
    z = (rng.normal(0, scale, (N, A))).astype(dt)
    act = rng.integers(0, A, N)
    adv = rng.normal(0, 1.5, N).astype(dt)
    lp = R.generative._log_softmax_rows(z)[np.arange(N), act]
    old = (lp + rng.normal(0, 0.4, N)).astype(dt)
    w = rng.uniform(0.5, 2, N).astype(dt)
    return z, act, adv, old, w


def _stats_close(got, want, dt):
    assert set(got) == set(want)
    for k in want:
        if k == "clip_fraction" and dt == np.float32:   # a ratio at the edge may fall either side in float
            assert abs(got[k] - want[k]) <= 2 / 61, k
        else:
            assert got[k] == pytest.approx(want[k], rel=1e-12 if dt == np.float64 else 1e-5, abs=1e-14), k
        assert type(got[k]) is float, k


# ------------------------------------------------------------------ kernels vs reference

@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [0.0, 0.05])
@pytest.mark.parametrize("weighted", [False, True])
def test_pg_logits_vs_reference(dt, reduction, beta, weighted):
    z, act, adv, _, w = _case(dt=dt)
    w = w if weighted else None
    s1, s2 = {}, {}
    got = PG(z, act, adv, beta, weight=w, reduction=reduction, stats=s1, return_grad=True)
    assert got[1].dtype == dt and got[1].shape == z.shape
    _close(got, R.policy_gradient_loss_from_logits(z, act, adv, beta, w, reduction, stats=s2), dt)
    _stats_close(s1, s2, dt)
    v = PG(z, act, adv, beta, weight=w, reduction=reduction)
    np.testing.assert_array_equal(v, got[0])    # the value-only pass gives the same bits


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [0.0, 0.05])
@pytest.mark.parametrize("dual_clip", [None, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_ppo_logits_vs_reference(dt, reduction, beta, dual_clip, weighted):
    z, act, adv, old, w = _case(dt=dt)
    w = w if weighted else None
    s1, s2 = {}, {}
    got = PPO(z, act, old, adv, 0.2, dual_clip, beta, weight=w, reduction=reduction, stats=s1, return_grad=True)
    _close(got, R.ppo_clip_loss_from_logits(z, act, old, adv, 0.2, dual_clip, beta, w, reduction, stats=s2), dt)
    _stats_close(s1, s2, dt)
    assert 0 < s1["clip_fraction"] < 1 and s1["approx_kl"] > 0
    np.testing.assert_array_equal(PPO(z, act, old, adv, 0.2, dual_clip, beta, weight=w, reduction=reduction),
                                  got[0])


def test_logits_form_is_the_log_prob_form_of_log_softmax():
    z, act, adv, old, w = _case()
    lp = R.generative._log_softmax_rows(z)[np.arange(len(act)), act]
    v1, g1 = PG(z, act, adv, return_grad=True)
    v2, g2 = fl.policy_gradient_loss(lp, adv, return_grad=True)
    assert v1 == pytest.approx(v2, rel=1e-13)
    s1, s2 = {}, {}
    v1, g1 = PPO(z, act, old, adv, 0.2, 3.0, stats=s1, return_grad=True)
    v2, g2 = fl.ppo_clip_loss(lp, old, adv, 0.2, 3.0, stats=s2, return_grad=True)
    assert v1 == pytest.approx(v2, rel=1e-13)
    # d/dz = d/dlp (onehot - p)
    p = np.exp(R.generative._log_softmax_rows(z))
    onehot = np.eye(z.shape[1])[act]
    np.testing.assert_allclose(g1, g2[:, None] * (onehot - p), rtol=1e-12, atol=1e-15)
    assert s1["clip_fraction"] == s2["clip_fraction"]
    assert s1["approx_kl"] == pytest.approx(s2["approx_kl"], rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 40), A=st.integers(1, 12), f64=st.booleans(), beta=st.sampled_from([0.0, 0.3]),
       seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 3.0, 30.0]),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_property_vs_reference(N, A, f64, beta, seed, scale, reduction):
    dt = np.float64 if f64 else np.float32
    z, act, adv, old, w = _case(N, A, dt, seed, scale)
    s1, s2 = {}, {}
    got = PPO(z, act, old, adv, 0.2, None, beta, reduction=reduction, stats=s1, return_grad=True)
    want = R.ppo_clip_loss_from_logits(z, act, old, adv, 0.2, None, beta, reduction=reduction, stats=s2)
    if N == 0:
        assert got[1].shape == (0, A)
        if reduction == "mean":
            assert math.isnan(got[0]) and math.isnan(s1["entropy"]) and math.isnan(s1["clip_fraction"])
        return
    tol = dict(rtol=1e-11, atol=1e-12) if f64 else dict(rtol=1e-4, atol=1e-5 * max(1.0, scale))
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a, np.float64), b, **tol)
    got = PG(z, act, adv, beta, reduction=reduction, return_grad=True)
    want = R.policy_gradient_loss_from_logits(z, act, adv, beta, reduction=reduction)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a, np.float64), b, **tol)


# ------------------------------------------------------------------ the reference against finite differences

def _fd(f, z, h=1e-6):
    return central_diff(f, [z], 0, h)


@pytest.mark.parametrize("beta", [0.0, 0.2])
def test_reference_gradients_vs_finite_differences(beta):
    z, act, adv, old, w = _case(N=9, A=5)
    g = R.policy_gradient_loss_from_logits(z, act, adv, beta, w)[1]
    np.testing.assert_allclose(g, _fd(lambda zz: R.policy_gradient_loss_from_logits(zz, act, adv, beta, w)[0],
                                      z.copy()), rtol=1e-6, atol=1e-9)
    for dual in (None, 1.5):
        g = R.ppo_clip_loss_from_logits(z, act, old, adv, 0.2, dual, beta, w, "sum")[1]
        f = lambda zz: R.ppo_clip_loss_from_logits(zz, act, old, adv, 0.2, dual, beta, w, "sum")[0]  # noqa: E731
        np.testing.assert_allclose(g, _fd(f, z.copy()), rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ the formulas in torch ops

def _torch_pg(torch, z, act, adv, beta):
    logp = torch.log_softmax(z, dim=1)
    lpa = logp.gather(1, act[:, None])[:, 0]
    ent = torch.distributions.Categorical(logits=z).entropy()
    return -(lpa * adv).mean() - beta * ent.mean()


def _torch_ppo(torch, z, act, old, adv, eps, dual, beta):
    # CleanRL's ppo.py policy loss (negated objective), with Ye et al.'s dual clip
    lpa = torch.log_softmax(z, dim=1).gather(1, act[:, None])[:, 0]
    ratio = torch.exp(lpa - old)
    obj = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    if dual is not None:
        obj = torch.where(adv < 0, torch.max(obj, dual * adv), obj)
    ent = torch.distributions.Categorical(logits=z).entropy()
    return -obj.mean() - beta * ent.mean()


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("beta", [0.0, 0.01])
def test_vs_torch_formulas(dt, beta):
    torch = pytest.importorskip("torch")
    z, act, adv, old, _ = _case(N=200, A=11, dt=dt)
    tz = torch.tensor(z, requires_grad=True)
    loss = _torch_pg(torch, tz, torch.tensor(act), torch.tensor(adv), beta)
    loss.backward()
    tol = dict(rtol=1e-12, atol=1e-14) if dt == np.float64 else dict(rtol=1e-5, atol=1e-7)
    v, g = PG(z, act, adv, beta, return_grad=True)
    np.testing.assert_allclose(v, loss.item(), **tol)
    np.testing.assert_allclose(g, tz.grad.numpy(), **tol)
    for dual in (None, 3.0):
        tz = torch.tensor(z, requires_grad=True)
        loss = _torch_ppo(torch, tz, torch.tensor(act), torch.tensor(old), torch.tensor(adv), 0.2, dual, beta)
        loss.backward()
        v, g = PPO(z, act, old, adv, 0.2, dual, beta, return_grad=True)
        np.testing.assert_allclose(v, loss.item(), **tol)
        np.testing.assert_allclose(g, tz.grad.numpy(), **tol)


def test_torch_adapter_trains_a_bandit_policy_like_torch():
    # a 4-armed bandit, REINFORCE with an entropy bonus, float64: fastloss.torch's
    # function and module against the torch-ops formula, step by step
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt
    rng = np.random.default_rng(3)
    p1 = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    p2 = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    o1, o2 = torch.optim.SGD([p1], lr=0.5), torch.optim.SGD([p2], lr=0.5)
    module = flt.PolicyGradientLossFromLogits(entropy_coef=0.01)
    means = np.array([0.1, 0.5, 0.2, 0.9])
    for _ in range(30):
        act = torch.tensor(rng.integers(0, 4, 64))
        rew = torch.tensor(means[act.numpy()] + rng.normal(0, 0.1, 64))
        adv = rew - rew.mean()
        z1, z2 = p1.expand(64, 4), p2.expand(64, 4)
        l1 = module(z1, act, adv)
        l2 = _torch_pg(torch, z2, act, adv, 0.01)
        assert l1.item() == pytest.approx(l2.item(), rel=1e-9, abs=1e-12)
        for o, l in ((o1, l1), (o2, l2)):
            o.zero_grad()
            l.backward()
            o.step()
    np.testing.assert_allclose(p1.detach().numpy(), p2.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert int(torch.argmax(p1)) == 3
    v = flt.ppo_clip_loss_from_logits(p1.expand(3, 4), torch.tensor([0, 1, 3]), torch.zeros(3, dtype=torch.float64),
                                      torch.ones(3, dtype=torch.float64))
    assert v.requires_grad


# ------------------------------------------------------------------ threads, extremes, non-finite input

@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("A", [16, 17])
def test_thread_count_bit_identity(dt, A):
    # A = 17: blocks of 963 rows, so groups of 8 rows end cut short inside the blocks
    z, act, adv, old, w = _case(N=9000, A=A, dt=dt)   # 144000+ elements, 9 blocks, parallel
    ref = None
    for nt in (1, 2, 3):
        s1 = {}
        v, g = PPO(z, act, old, adv, 0.2, None, 0.01, weight=w, stats=s1, return_grad=True, n_threads=nt)
        s2 = {}
        v2, g2 = PG(z, act, adv, 0.01, stats=s2, return_grad=True, n_threads=nt)
        got = (v, g, s1, v2, g2, s2)
        if ref is None:
            ref = got
            continue
        assert v == ref[0] and v2 == ref[3] and s1 == ref[2] and s2 == ref[5]
        np.testing.assert_array_equal(g, ref[1])
        np.testing.assert_array_equal(g2, ref[4])


def test_log_prob_form_stats_thread_bit_identity():
    rng = np.random.default_rng(1)
    lp = np.log(rng.uniform(0.05, 1, 100_000)).astype(np.float32)
    old = (lp + rng.normal(0, 0.3, lp.size)).astype(np.float32)
    adv = rng.normal(0, 1, lp.size).astype(np.float32)
    res = []
    for nt in (1, 2, 3):
        s = {}
        v, g = fl.ppo_clip_loss(lp, old, adv, stats=s, return_grad=True, n_threads=nt)
        res.append((v, g.tobytes(), s))
    assert res[0] == res[1] == res[2]
    # the stats are unweighted, and the same with and without a gradient
    s_w, s_v = {}, {}
    fl.ppo_clip_loss(lp, old, adv, weight=np.full(lp.size, 3.0, np.float32), stats=s_w)
    fl.ppo_clip_loss(lp, old, adv, stats=s_v)
    assert s_w == s_v == res[0][2]


def _rows_run(kernel, z, act, adv, old, w, eps, dual, beta, g, lo, xs):
    """The row driver's RL kernel as _rl_losses._logits_run calls it, but without the actions
    checked first: a bad action then reaches the main pass (its row is zeroed there)."""
    N, A = z.shape
    return _rows.run(_rows.LOSS_IDS[kernel], z.dtype != np.float32, z, act, _rows.LABEL_CODES["int64"], None, None,
                     g, None, lo, A, 1, 0, False, eps, dual, beta, 0, 0, float(A), 1 if g is not None else 0, 1.0,
                     _rows.DENOM_NONE, False, 1, None, None, None, adv, old, w, xs)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("A", [1, 3, 8, 9, 16, 17, 64, 65])
@pytest.mark.parametrize("kernel,beta,dual,weighted", [("pg_logits", 0.0, 0.0, False), ("pg_logits", 0.03, 0.0, True),
                                                       ("ppo_logits", 0.0, 0.0, True), ("ppo_logits", 0.03, 3.0, False)])
def test_eight_row_groups_agree_with_single_rows(dt, A, kernel, beta, dual, weighted):
    # The kernels run rows in groups of 8 (fl_rows_rl.h): the per-row scalars vectorized across the
    # group, and on the x86-64-v3 path float32 groups of A <= 64 with the rows in AVX2 lanes (8 x 8
    # transposes); a row alone, or in the group cut short at the end of a call, takes the row passes.
    # Both give the same bits per row: loss, gradient, the statistics' terms; with -inf, +inf, NaN
    # and huge logits and a bad action (zeroed in the main pass) among the rows.
    rng = np.random.default_rng(200 + A)
    n = 29                                             # 3 whole groups and a tail of 5
    z, act, adv, old, w = _case(N=n, A=A, dt=dt, seed=A)
    adv[3] = 0
    z[4, :] = -np.inf                                  # NaN, as cross_entropy
    z[5, rng.integers(0, A)] = np.nan
    z[6, A - 1] = np.inf
    z[9] = 1e30
    z[10, ::2] = -1e30
    z[11, :] = 0
    if A > 1:
        z[12, (act[12] + 1) % A] = -np.inf             # an action not taken at -inf: gradient 0 there
    z[13] *= 1e3
    act[17] = A                                        # bad: found by the main pass, the row zeroed
    old[18] = -np.inf
    ww = w if weighted else None
    o = old if kernel == "ppo_logits" else None
    per = _rows.block_items(A, 1)
    g, lo, xs = np.full_like(z, 7), np.full(n, 7, dt), np.zeros(3 * ((n + per - 1) // per))
    total, _, bad = _rows_run(kernel, z, act, adv, o, ww, 0.2, dual, beta, g, lo, xs)
    assert bad == 17 and np.all(g[17] == 0) and lo[17] == 0
    lv, xv = np.full(n, 7, dt), np.zeros_like(xs)       # the value-only pass gives the same losses and sums
    tv, _, _ = _rows_run(kernel, z, act, adv, o, ww, 0.2, dual, beta, None, lv, xv)
    np.testing.assert_array_equal(lv, lo)
    np.testing.assert_array_equal(xv, xs)
    assert tv == total or (math.isnan(tv) and math.isnan(total))
    assert np.isnan(lo[4]) and np.all(np.isnan(g[4])) and np.isnan(lo[5])
    sums = np.zeros(3)
    for i in range(n):
        sl = slice(i, i + 1)
        gi, li, xi = np.full_like(z[sl], 7), np.full(1, 7, dt), np.zeros(3)
        _, _, bi = _rows_run(kernel, z[sl], act[sl], adv[sl], None if o is None else o[sl],
                             None if ww is None else ww[sl], 0.2, dual, beta, gi, li, xi)
        assert bi == (0 if i == 17 else -1)
        np.testing.assert_array_equal(li, lo[sl], err_msg=f"row {i}")
        np.testing.assert_array_equal(gi, g[sl], err_msg=f"row {i}")
        assert np.array_equal(np.signbit(gi), np.signbit(g[sl])) or np.isnan(lo[i]), f"row {i}"
        sums += xi
    # the statistics' block sums are the rows' terms added in row order (NaN rows included)
    np.testing.assert_array_equal(xs, sums)
    # and through the public call, rows without the bad action
    keep = np.arange(n) != 17
    fn = PG if kernel == "pg_logits" else PPO
    args = (z[keep], act[keep], adv[keep]) if kernel == "pg_logits" else (z[keep], act[keep], o[keep], adv[keep])
    kw = dict(weight=None if ww is None else ww[keep], reduction="none", return_grad=True)
    extra = (beta,) if kernel == "pg_logits" else (0.2, dual or None, beta)
    v, gg = fn(*args, *extra, **kw)
    np.testing.assert_array_equal(v, lo[keep])
    np.testing.assert_array_equal(gg, g[keep])


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_extreme_logits(dt):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [5.0, 5.0, 5.0], [0.0, -1e4, 1e4]], dt)
    act = np.array([0, 0, 2, 2])
    adv = np.array([1.0, -1.0, 2.0, 0.5], dt)
    old = np.array([0.0, -2e4, -1.0, 0.0], dt)
    for beta in (0.0, 0.1):
        s1, s2 = {}, {}
        got = PPO(z, act, old, adv, 0.2, None, beta, reduction="none", stats=s1, return_grad=True)
        want = R.ppo_clip_loss_from_logits(z.astype(np.float64), act, old.astype(np.float64), adv, 0.2, None, beta,
                                           reduction="none", stats=s2)
        assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1]))
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-12)
        got = PG(z, act, adv, beta, reduction="none", return_grad=True)
        want = R.policy_gradient_loss_from_logits(z.astype(np.float64), act, adv, beta, reduction="none")
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-12)
    # a confident row keeps its small loss and entropy (no 1 - p rounded away)
    z = np.array([[30.0, 0.0, 0.0]], dt)
    s = {}
    v, g = PG(z, np.array([0]), np.array([1.0], dt), 1.0, stats=s, return_grad=True)
    e = 2 * math.exp(-30)
    assert s["entropy"] == pytest.approx(e * 31, rel=1e-5)
    # g_0 = -(1 - p_0) + p_0 (0 + D), D = -sum p_c d_c = 30 e
    assert g[0, 0] == pytest.approx(29 * e, rel=1e-5)
    v, g = PG(z, np.array([0]), np.array([1.0], dt), 0.0, return_grad=True)
    assert v == pytest.approx(e, rel=1e-5) and g[0, 0] == pytest.approx(-e, rel=1e-5)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_minus_inf_logits(dt):
    inf = np.inf
    # -inf logits of actions not taken: the limit (probability 0, no entropy, gradient 0)
    z = np.array([[0.0, -inf, 1.0], [-inf, 2.0, -inf]], dt)
    act, adv = np.array([0, 1]), np.array([1.0, -1.0], dt)
    v, g = PG(z, act, adv, 0.1, reduction="none", return_grad=True)
    want = R.policy_gradient_loss_from_logits(z.astype(np.float64), act, adv, 0.1, reduction="none")
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, want[0], **_tol(dt))
    np.testing.assert_allclose(g, want[1], **_tol(dt))
    assert g[0, 1] == 0 and g[1, 0] == 0 and g[1, 2] == 0
    # the action taken at -inf: an infinite loss as cross_entropy's; none when its advantage is 0
    z = np.array([[-inf, 0.0], [-inf, 0.0]], dt)
    v = PG(z, np.array([0, 0]), np.array([1.0, 0.0], dt), reduction="none")
    ce = fl.cross_entropy(z[:1], np.array([0]), reduction="none")
    assert v[0] == ce[0] == np.inf and v[1] == 0
    # a row of -inf only: NaN, as cross_entropy gives
    z = np.full((1, 3), -inf, dt)
    v, g = PG(z, np.array([1]), np.array([1.0], dt), 0.1, return_grad=True)
    assert math.isnan(v) and math.isnan(fl.cross_entropy(z, np.array([1])))
    assert np.all(np.isnan(g))


def test_nan_propagates():
    z, act, adv, old, _ = _case(N=5, A=4)
    z[2, 1] = np.nan
    v, g = PPO(z, act, old, adv, 0.2, None, 0.1, reduction="none", return_grad=True)
    assert np.isnan(v[2]) and np.all(np.isnan(g[2])) and np.all(np.isfinite(v[[0, 1, 3, 4]]))
    adv[3] = np.nan
    v, g = PG(z, act, adv, reduction="none", return_grad=True)
    assert np.isnan(v[3]) and np.any(np.isnan(g[3]))
    old[0] = np.nan
    assert math.isnan(PPO(z, act, old, adv))


def test_actions_dtypes_and_layouts():
    z, act, adv, old, _ = _case(N=20, A=5)
    want = PPO(z, act, old, adv, return_grad=True)
    for a in (act.astype(np.int32), act.astype(np.uint8), act.astype(np.int16), act.astype(np.uint64),
              list(act), np.repeat(act, 2)[::2]):
        got = PPO(z, a, old, adv, return_grad=True)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
    zf = np.asfortranarray(z)
    got = PPO(zf, act, old, adv, return_grad=True)    # converted once
    assert got[0] == want[0]


def test_out_buffer_and_classes():
    z, act, adv, old, w = _case(N=30, A=6, dt=np.float32)
    buf = np.empty_like(z)
    v, g = PPO(z, act, old, adv, 0.1, 2.0, 0.02, weight=w, return_grad=True, out=buf)
    assert g is buf
    loss = fl.PPOClipLossFromLogits(0.1, 2.0, 0.02)
    v2, g2 = loss.value_and_grad(z, act, old, adv, w)
    assert v2 == v and np.array_equal(g2, g) and set(loss.stats) == {"entropy", "clip_fraction", "approx_kl"}
    assert loss(z, act, old, adv, w) == v
    assert repr(loss) == "PPOClipLossFromLogits(clip_eps=0.1, dual_clip=2.0, entropy_coef=0.02, reduction='mean')"
    pg = fl.PolicyGradientLossFromLogits(0.02, reduction="sum")
    v, g = pg.value_and_grad(z, act, adv, out=buf)
    assert g is buf and v == PG(z, act, adv, 0.02, reduction="sum")
    assert pg.stats["entropy"] > 0
    v, g = pg.value_and_grad(z, act, adv, wrt=("logits",))
    assert g.shape == z.shape


def test_bad_action_leaves_out_untouched():
    z, act, adv, old, _ = _case(N=10, A=4)
    act[7] = 4
    buf = np.full_like(z, 7.0)
    with pytest.raises(ValueError, match=r"ppo_clip_loss_from_logits: actions\[7\] = 4 is out of range for 4 actions"):
        PPO(z, act, old, adv, return_grad=True, out=buf)
    assert np.all(buf == 7.0)
    act[7] = -1
    with pytest.raises(ValueError, match=r"policy_gradient_loss_from_logits: actions\[7\] = -1 is out of range"):
        PG(z, act, adv)


def _z():
    return np.zeros((3, 4))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: PG(_z(), np.zeros(3), np.zeros(3)), TypeError,
     r"policy_gradient_loss_from_logits: actions must hold integer action indices, got dtype float64"),
    (lambda: PG(_z(), np.zeros(2, np.int64), np.zeros(3)), ValueError,
     r"policy_gradient_loss_from_logits: actions must have shape \(3,\) \(one action per row of logits of shape "
     r"\(3, 4\)\), got \(2,\)"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(4)), ValueError,
     r"policy_gradient_loss_from_logits: advantages must have shape \(3,\) \(one value per row of logits of "
     r"shape \(3, 4\)\), got \(4,\)"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros((3, 1))), ValueError,
     r"advantages must have shape \(3,\)"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), np.zeros(2), np.zeros(3)), ValueError,
     r"ppo_clip_loss_from_logits: old_log_probs must have shape \(3,\)"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), None, np.zeros(3)), TypeError,
     r"ppo_clip_loss_from_logits: old_log_probs must be an array of shape \(N,\), got None"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), weight=np.ones(2)), ValueError,
     r"policy_gradient_loss_from_logits: weight must have shape \(3,\)"),
    (lambda: PG(np.zeros(4), np.zeros(1, np.int64), np.zeros(1)), ValueError,
     r"policy_gradient_loss_from_logits: logits must have shape \(N, A\) \(a row of A >= 1 action logits per "
     r"sample\), got \(4,\)"),
    (lambda: PG(np.zeros((2, 3, 4)), np.zeros(2, np.int64), np.zeros(2)), ValueError,
     r"logits must have shape \(N, A\).*got \(2, 3, 4\)"),
    (lambda: PG(np.zeros((2, 0)), np.zeros(2, np.int64), np.zeros(2)), ValueError,
     r"logits must have shape \(N, A\).*got \(2, 0\)"),
    (lambda: PG(np.zeros((2, 3), np.complex128), np.zeros(2, np.int64), np.zeros(2)), TypeError,
     r"policy_gradient_loss_from_logits: logits"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), entropy_coef=-0.1), ValueError,
     r"policy_gradient_loss_from_logits: entropy_coef must be a finite number >= 0 \(the weight of the entropy "
     r"bonus\), got -0.1"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), np.zeros(3), np.zeros(3), entropy_coef=math.inf), ValueError,
     r"ppo_clip_loss_from_logits: entropy_coef must be a finite number >= 0"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), entropy_coef=math.nan), ValueError,
     r"policy_gradient_loss_from_logits: entropy_coef must not be NaN"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), entropy_coef="0.1"), TypeError,
     r"policy_gradient_loss_from_logits: entropy_coef must be a real number, got str"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), np.zeros(3), np.zeros(3), clip_eps=0), ValueError,
     r"ppo_clip_loss_from_logits: clip_eps must be > 0, got 0"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), np.zeros(3), np.zeros(3), dual_clip=0.5), ValueError,
     r"ppo_clip_loss_from_logits: dual_clip must be None or a number > 1, got 0.5"),
    (lambda: PPO(_z(), np.zeros(3, np.int64), np.zeros(3), np.zeros(3), stats=[]), TypeError,
     r"ppo_clip_loss_from_logits: stats must be None or a dict to fill, got list"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), out=np.zeros((3, 4))), ValueError,
     r"policy_gradient_loss_from_logits: out= is the gradient's buffer; pass return_grad=True with it"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), return_grad=True, out=np.zeros((3, 5))), ValueError,
     r"policy_gradient_loss_from_logits: out"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), reduction="avg"), ValueError,
     r"policy_gradient_loss_from_logits: .*reduction"),
    (lambda: PG(_z(), np.zeros(3, np.int64), np.zeros(3), return_grad=("input",)), ValueError,
     r"policy_gradient_loss_from_logits: return_grad names the operands to differentiate, each once, from "
     r"'logits'"),
    (lambda: PG(_z(), np.array([0, 1, 2**64 - 1], np.uint64), np.zeros(3)), ValueError,
     r"policy_gradient_loss_from_logits: actions\[2\] = 18446744073709551615 is out of range for 4 actions"),
    (lambda: fl.PPOClipLossFromLogits(clip_eps=-1), ValueError, r"PPOClipLossFromLogits: clip_eps must be > 0"),
    (lambda: fl.PPOClipLossFromLogits(dual_clip=1.0), ValueError, r"PPOClipLossFromLogits: dual_clip must be None"),
    (lambda: fl.PPOClipLossFromLogits(entropy_coef=-1), ValueError, r"PPOClipLossFromLogits: entropy_coef must be"),
    (lambda: fl.PolicyGradientLossFromLogits(entropy_coef=-1), ValueError,
     r"PolicyGradientLossFromLogits: entropy_coef must be"),
    (lambda: fl.PolicyGradientLossFromLogits(reduction="x"), ValueError, r"PolicyGradientLossFromLogits: .*reduction"),
])
def test_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_out_may_not_overlap_the_inputs():
    z, act, adv, old, _ = _case(N=4, A=3)
    with pytest.raises(ValueError, match=r"policy_gradient_loss_from_logits: out"):
        PG(z, act, adv, return_grad=True, out=z)


def test_dask_splits_them_along_the_rows():
    # fastloss.dask splits them along the rows as cross_entropy (gathered with stats=): the same bits
    fld = pytest.importorskip("fastloss.dask")
    da = pytest.importorskip("dask.array")
    assert fld.strategy("ppo_clip_loss_from_logits") == "split"
    assert fld.strategy("ppo_clip_loss_from_logits", stats={}) == "gathered"
    z, act, adv, old, _ = _case(N=300, A=6)
    want = PPO(z, act, old, adv, 0.2, None, 0.01, return_grad=True)
    got = fld.ppo_clip_loss_from_logits(da.from_array(z, chunks=(100, 6)), da.from_array(act, chunks=100),
                                        da.from_array(old, chunks=100), da.from_array(adv, chunks=100), 0.2, None,
                                        0.01, return_grad=True)
    assert float(got[0].compute(scheduler="sync")) == want[0]
    np.testing.assert_array_equal(got[1].compute(scheduler="sync"), want[1])


# ------------------------------------------------------------------ td_loss: the target formed in the kernel

@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["mse", "huber"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_td_fused_target_vs_reference(dt, kind, reduction):
    rng = np.random.default_rng(5)
    n = 20011
    v, r, nv = (rng.normal(0, 2, n).astype(dt) for _ in range(3))
    d = rng.uniform(0, 1, n).astype(dt)        # any done weight in [0, 1]
    d[::3] = 1
    w = rng.uniform(0.5, 2, n).astype(dt)
    for gamma in (0.0, 0.9, 1.0):
        got = fl.td_loss(v, r, nv, d, gamma, kind, weight=w, reduction=reduction, return_grad=True)
        want = R.td_loss(v, r, nv, d, gamma, kind, weight=w, reduction=reduction)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a, np.float64), b, **_tol(dt))
    # the target is a constant: the gradient is that of f(values - target) only
    g = fl.td_loss(v, r, nv, d, 0.5, return_grad=True, reduction="sum")[1]
    np.testing.assert_allclose(g, v - (r + np.asarray(0.5, dt) * (1 - d) * nv), **_tol(dt))


def test_td_nan_and_threads():
    rng = np.random.default_rng(6)
    n = 100_000
    v, r, nv = (rng.normal(0, 2, n) for _ in range(3))
    d = (rng.random(n) < 0.1).astype(np.float64)
    res = [fl.td_loss(v, r, nv, d, 0.99, "huber", return_grad=True, n_threads=nt) for nt in (1, 2, 3)]
    assert res[0][0] == res[1][0] == res[2][0]
    np.testing.assert_array_equal(res[0][1], res[2][1])
    nv[5] = np.nan
    out = fl.td_loss(v, r, nv, d, 0.99, reduction="none", return_grad=True)
    assert np.isnan(out[0][5]) and np.isnan(out[1][5]) and np.isfinite(out[0][4])


def test_no_temporaries_of_the_operands_size():
    # td_loss's target and PPO's statistics come from the kernel's pass: a value-only call
    # allocates nothing near the operands' size (8 MB each here)
    import tracemalloc
    rng = np.random.default_rng(8)
    n = 10**6
    v, r, nv, lp, old, adv = (rng.normal(0, 1, n) for _ in range(6))
    d = (rng.random(n) < 0.1).astype(np.float64)
    fl.td_loss(v, r, nv, d, 0.99)
    fl.ppo_clip_loss(lp, old, adv, stats={})
    tracemalloc.start()
    try:
        fl.td_loss(v, r, nv, d, 0.99, kind="huber")
        st = {}
        fl.ppo_clip_loss(lp, old, adv, stats=st)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak
    assert 0 < st["clip_fraction"] < 1

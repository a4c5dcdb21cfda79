"""CTC against PyTorch's own ``torch.nn.functional.ctc_loss`` and
``torch.nn.CTCLoss`` (positional arguments included):

1. The value, in every reduction, target form, layout and dtype.
2. The two gradients: PyTorch's backward at ``log_probs`` is
   ``exp(log_probs) - occupancy`` (the logits' gradient under log_softmax),
   fastloss's is the exact ``-occupancy``; the test checks that relation,
   and that both give the same gradient at the logits after log_softmax
   (fastloss's ``from_logits`` too).
3. ``fastloss.torch.ctc_loss`` / ``CTCLoss`` end to end after
   ``log_softmax``: forward and the gradient that reaches the logits, with
   a random upstream gradient for reduction="none".
4. Where PyTorch's gradient is NaN (infeasible targets, -inf on an unused
   class) fastloss's is finite and agrees elsewhere.
"""
import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

F = torch.nn.functional
pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def batch(T=12, N=4, C=6, S=4, seed=0, blank=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (T, N, C))
    labels = [c for c in range(C) if c != blank]
    tg = rng.choice(labels, (N, S)).astype(np.int64)
    tg[0, 1] = tg[0, 0]
    il = np.array([T, T - 2, T - 5, T][:N])
    tl = np.array([S, S - 1, 0, 2][:N])
    return z, tg, il, tl


def lsm(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


TOL = {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 2e-6)}


def close(a, e, dtype, what):
    rtol, atol = TOL[dtype]
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    scale = max(float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)), 1e-300)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=what)


# --------------------------------------------------------------- 1. value

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("form", ["padded", "concatenated", "tuples"])
def test_value_matches_torch(dtype, reduction, form):
    z, tg, il, tl = batch(seed=len(form) + len(reduction))
    lp = lsm(z).astype(dtype)
    if form == "concatenated":
        tg = np.concatenate([tg[n, :tl[n]] for n in range(len(tl))])
    ilx, tlx = (tuple(int(v) for v in il), tuple(int(v) for v in tl)) if form == "tuples" else (il, tl)
    ref = F.ctc_loss(torch.from_numpy(lp.astype(np.float64)), torch.from_numpy(tg),
                     torch.from_numpy(il) if form != "tuples" else ilx,
                     torch.from_numpy(tl) if form != "tuples" else tlx, 0, reduction, False)
    v = fl.ctc_loss(lp, tg, ilx, tlx, 0, reduction, False)
    close(v, ref.numpy(), dtype, "value")
    mod = torch.nn.CTCLoss(0, reduction, False)(torch.from_numpy(lp.astype(np.float64)), torch.from_numpy(tg),
                                                 torch.from_numpy(il), torch.from_numpy(tl))
    close(fl.CTCLoss(0, reduction, False)(lp, tg, il, tl), mod.numpy(), dtype, "class value")


@pytest.mark.parametrize("blank", [0, 3, 5])
def test_blank_and_unbatched_match_torch(blank):
    z, tg, il, tl = batch(seed=blank, blank=blank)
    lp = lsm(z)
    ref = F.ctc_loss(torch.from_numpy(lp), torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl),
                     blank=blank, reduction="none")
    close(fl.ctc_loss(lp, tg, il, tl, blank=blank, reduction="none"), ref.numpy(), np.float64, "blank")
    ref1 = F.ctc_loss(torch.from_numpy(lp[:, 0]), torch.from_numpy(tg[0]), torch.tensor(il[0]),
                      torch.tensor(tl[0]), blank=blank, reduction="none")
    v1 = fl.ctc_loss(lp[:, 0], tg[0], int(il[0]), int(tl[0]), blank=blank, reduction="none")
    assert v1.shape == tuple(ref1.shape) == ()
    close(v1, ref1.numpy(), np.float64, "unbatched")


# --------------------------------------------------------------- 2. gradients

@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_relation_at_log_probs(reduction):
    """torch's backward at log_probs = fastloss's exact gradient + scale * exp(log_probs)
    over each sample's time steps (and both are zero beyond)."""
    z, tg, il, tl = batch(seed=21)
    lp = lsm(z)
    x = torch.from_numpy(lp).requires_grad_(True)
    F.ctc_loss(x, torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl), reduction=reduction).backward()
    _, g = fl.ctc_loss(lp, tg, il, tl, reduction=reduction, return_grad=True)
    N = len(il)
    scale = 1.0 / (N * np.maximum(tl, 1)) if reduction == "mean" else np.ones(N)
    live = (np.arange(lp.shape[0])[:, None] < il[None, :])[:, :, None]
    close(x.grad.numpy(), g + np.where(live, np.exp(lp) * scale[None, :, None], 0.0), np.float64, "relation")
    # the exact gradient sums to -scale at every live step (the occupancies sum to 1)
    close(g.sum(-1), np.where(live[..., 0], -scale[None, :], 0.0), np.float64, "occupancy")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["TNC", "NTC"])
def test_logits_gradient_matches_torch(dtype, reduction, batch_first):
    """At the logits: torch (log_softmax then ctc_loss, backward), fastloss
    from_logits, and fastloss's exact gradient chained through log_softmax."""
    z, tg, il, tl = batch(seed=31)
    z = z.astype(dtype)
    zt = torch.from_numpy(z.astype(np.float64)).requires_grad_(True)
    ref = F.ctc_loss(zt.log_softmax(-1), torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl),
                     reduction=reduction)
    w = np.random.default_rng(1).normal(0, 1, ref.shape)
    (ref * torch.from_numpy(w)).sum().backward()
    zz = np.ascontiguousarray(z.transpose(1, 0, 2)) if batch_first else z
    v, g = fl.ctc_loss(zz, tg, il, tl, reduction=reduction, from_logits=True, batch_first=batch_first,
                       return_grad=True)
    if reduction == "none":
        g = g * (w[:, None, None] if batch_first else w[None, :, None])
    else:
        g = g * w
    if batch_first:
        g = g.transpose(1, 0, 2)
    close(v, ref.detach().numpy(), dtype, "value")
    close(g, zt.grad.numpy(), dtype, "logits gradient (from_logits)")
    # the exact log_probs gradient, chained through log_softmax by hand
    lp = lsm(z.astype(np.float64)).astype(dtype)
    _, ge = fl.ctc_loss(lp, tg, il, tl, reduction="sum", return_grad=True)
    ge = ge.astype(np.float64)
    ref2 = F.ctc_loss(zt.log_softmax(-1), torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl),
                      reduction="sum")
    zt.grad = None
    ref2.backward()
    chained = ge - np.exp(lsm(z.astype(np.float64))) * ge.sum(-1, keepdims=True)
    close(chained, zt.grad.numpy(), dtype, "exact gradient chained through log_softmax")


# --------------------------------------------------------------- 3. fastloss.torch

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("form", ["function", "module", "module-batch-first", "function-logits"])
def test_fastloss_torch_end_to_end(dtype, reduction, form):
    z, tg, il, tl = batch(seed=41)
    zt = torch.from_numpy(z).to(dtype)
    ref_z = zt.detach().to(torch.float64).requires_grad_(True)
    args = (torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    ref = F.ctc_loss(ref_z.log_softmax(-1), *args, 0, reduction, False)
    w = torch.from_numpy(np.random.default_rng(2).normal(0, 1, tuple(ref.shape)))
    (ref * w).sum().backward()

    x = zt.detach().clone().requires_grad_(True)
    if form == "function":
        out = flt.ctc_loss(x.log_softmax(-1), *args, 0, reduction, False)
    elif form == "function-logits":
        out = flt.ctc_loss(x, *args, 0, reduction, False, from_logits=True)
    elif form == "module":
        out = flt.CTCLoss(0, reduction, False)(x.log_softmax(-1), *args)
    else:
        xb = x.transpose(0, 1).contiguous()
        out = flt.CTCLoss(reduction=reduction, batch_first=True)(xb.log_softmax(-1), *args)
    assert out.dtype == dtype and out.shape == ref.shape
    (out * w.to(dtype)).sum().backward()
    rtol = 1e-10 if dtype == torch.float64 else 2e-5
    np.testing.assert_allclose(out.detach().double().numpy(), ref.detach().numpy(), rtol=rtol)
    gref = ref_z.grad.numpy()
    np.testing.assert_allclose(x.grad.double().numpy(), gref, rtol=rtol, atol=rtol * np.abs(gref).max())


def test_fastloss_torch_lengths_as_tuples_and_int32_targets():
    z, tg, il, tl = batch(seed=43)
    x = torch.from_numpy(z).requires_grad_(True)
    out = flt.ctc_loss(x.log_softmax(-1), torch.from_numpy(tg.astype(np.int32)), tuple(il.tolist()),
                       tuple(tl.tolist()))
    ref = F.ctc_loss(x.log_softmax(-1), torch.from_numpy(tg), tuple(il.tolist()), tuple(tl.tolist()))
    assert torch.allclose(out, ref, rtol=1e-12)


# --------------------------------------------------------------- 4. where torch gives NaN

def test_infeasible_zero_infinity_and_nan():
    z, tg, il, tl = batch(seed=51)
    il = il.copy()
    il[1] = 1                        # target of 3 labels in 1 step: infeasible
    lp = lsm(z)
    x = torch.from_numpy(lp).requires_grad_(True)
    args = (torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    ref = F.ctc_loss(x, *args, reduction="sum", zero_infinity=True)
    ref.backward()
    v, g = fl.ctc_loss(lp, tg, il, tl, reduction="sum", zero_infinity=True, return_grad=True)
    close(v, ref.item(), np.float64, "zero_infinity value")
    assert np.all(g[:, 1] == 0) and torch.all(x.grad[:, 1] == 0)
    # without zero_infinity: inf for both; torch's gradient is NaN, fastloss's is 0
    x.grad = None
    F.ctc_loss(x, *args, reduction="none").sum().backward()
    v, g = fl.ctc_loss(lp, tg, il, tl, reduction="none", return_grad=True)
    assert v[1] == np.inf
    assert torch.isnan(x.grad[:, 1]).any() and np.all(g[:, 1] == 0)


def test_neg_inf_logit_on_unused_class():
    z, tg, il, tl = batch(C=6, seed=61)
    tg[tg == 5] = 1
    z[:, :, 5] = -np.inf
    zt = torch.from_numpy(z).requires_grad_(True)
    args = (torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    F.ctc_loss(zt.log_softmax(-1), *args, reduction="sum").backward()
    assert torch.isnan(zt.grad).any()          # PyTorch's NaN (spread by log_softmax's backward)
    x = torch.from_numpy(z).requires_grad_(True)
    flt.ctc_loss(x.log_softmax(-1), *args, reduction="sum").backward()
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)) and np.all(g[:, :, 5] == 0)
    # the limit: PyTorch with that logit at -1e4 (its softmax is exactly 0 in float64)
    z2 = z.copy()
    z2[:, :, 5] = -1e4
    zt2 = torch.from_numpy(z2).requires_grad_(True)
    F.ctc_loss(zt2.log_softmax(-1), *args, reduction="sum").backward()
    close(g, zt2.grad.numpy(), np.float64, "the -inf limit")


def test_fastloss_torch_module_weight():
    """The module takes fastloss's per-sample weight= in forward, as the other
    fastloss.torch modules take weight=."""
    z, tg, il, tl = batch(seed=71)
    w = torch.tensor([0.5, 2.0, 1.0, 1.5], dtype=torch.float64)
    x = torch.from_numpy(z).requires_grad_(True)
    args = (torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    out = flt.CTCLoss(reduction="sum")(x.log_softmax(-1), *args, weight=w)
    ref = (F.ctc_loss(x.log_softmax(-1), *args, reduction="none") * w).sum()
    assert torch.allclose(out, ref, rtol=1e-12)
    out.backward()
    g1 = x.grad.clone()
    x.grad = None
    ref.backward()
    assert torch.allclose(g1, x.grad, rtol=1e-10, atol=1e-12)

"""Tests of ``fastloss.torch``: the PyTorch modules and functions whose
forward and backward run fastloss's fused kernels.

1. Values and gradients equal PyTorch's built-in losses (and the
   torchvision sigmoid focal formula written out in torch), module and
   functional forms, float32 and float64, every reduction.  The backward is
   driven by a random upstream gradient (a random scalar for "mean"/"sum",
   a random tensor of the output's shape for "none"), so the
   multiplication by ``grad_output`` is checked too.  The reference is
   PyTorch in float64 on the same (float32-rounded) data, so a float32
   comparison measures fastloss's rounding, not PyTorch's.
2. ``torch.autograd.gradcheck`` in float64 for every loss (sampled away
   from kinks), reductions "mean" and "none"; ``gaussian_nll_loss`` with
   respect to (input, var).
3. Training equivalence: a small MLP trained 50 SGD steps with a
   fastloss.torch loss ends with the weights of one trained with the
   PyTorch loss.
4. ``torch.compile`` (backends "eager" and "aot_eager"; inductor is
   ``slow``): same losses and gradients as eager.
5. Errors: non-CPU tensors, other dtypes, targets requiring grad, wrong
   operand counts.
6. Genericity: every fastloss loss is in ``fastloss.torch``, and a loss
   added to fastloss later is picked up with no adapter code.
"""
import copy
import importlib
import inspect
from typing import Callable, NamedTuple

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402  (needs torch)

nn = torch.nn
F = torch.nn.functional

pytestmark = pytest.mark.torch

DTYPES = [torch.float32, torch.float64]
# rtol, and atol relative to the largest reference magnitude
TOL = {torch.float32: (2e-5, 2e-6), torch.float64: (1e-10, 1e-12)}



@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """PyTorch's own OpenMP threads spin-wait; on a busy 2-core machine that
    makes tiny ops 100x slower.  One thread keeps this file's runtime stable."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ----------------------------------------------------------------- helpers

def _seed(*parts):
    """A deterministic seed from the test's parameters."""
    s = 0
    for p in parts:
        for ch in repr(p):
            s = (s * 131 + ord(ch)) % (2**31 - 1)
    return s


def _dtype_id(dt):
    return str(dt).replace("torch.", "")


def assert_close(actual, expected, dtype, what):
    """|a - e| <= rtol |e| + atol max|e| elementwise (NaN matches NaN)."""
    assert isinstance(actual, torch.Tensor), f"{what}: got {type(actual).__name__}, not a tensor"
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    assert a.shape == e.shape, f"{what}: shape {tuple(a.shape)} != torch's {tuple(e.shape)}"
    rtol, atol = TOL[dtype]
    finite = e[torch.isfinite(e)]
    scale = max(finite.abs().max().item() if finite.numel() else 1.0, 1e-300)
    err = (a - e).abs()
    bad = ~(err <= rtol * e.abs() + atol * scale) & ~(torch.isnan(a) & torch.isnan(e))
    if bad.any():
        idx = bad.nonzero()[:5].tolist() if a.dim() else [[]]
        detail = "; ".join(f"at {tuple(i)}: fastloss {a[tuple(i)].item()!r} torch {e[tuple(i)].item()!r}"
                           for i in idx)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} differ beyond tolerance "
                             f"(rtol={rtol}, atol={atol}*{scale:.3g}): {detail}")


def _to_tensor(a, dtype):
    """A NumPy array as a tensor: floating arrays in ``dtype``, integers kept."""
    t = torch.from_numpy(np.array(a, copy=True))
    return t.to(dtype) if t.is_floating_point() else t


def _opts(options, dtype):
    return {k: _to_tensor(v, dtype) if isinstance(v, np.ndarray) else v for k, v in options.items()}


def _log_softmax(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def focal_torch(x, t, alpha=0.25, gamma=2.0, reduction="mean"):
    """torchvision.ops.sigmoid_focal_loss, written out (torchvision does not
    import beside this torch)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"mean": loss.mean, "sum": loss.sum}.get(reduction, lambda: loss)()


def _focal_module(alpha=0.25, gamma=2.0, reduction="mean"):
    return lambda x, t: focal_torch(x, t, alpha, gamma, reduction)


# ------------------------------------------------------ data for each loss
# Each returns (operands as NumPy arrays, indices of the differentiable ones).

def d_reg(shape=(9, 5)):
    def data(rng):
        return [rng.normal(0, 2, shape), rng.normal(0, 2, shape)], (0,)
    return data


def d_poisson(log_input):
    def data(rng, shape=(9, 5)):
        x = rng.normal(0, 1.2, shape) if log_input else rng.uniform(0.05, 4.0, shape)
        t = rng.poisson(2.0, shape).astype(np.float64)
        t.reshape(-1)[::4] = rng.uniform(0, 3, t.reshape(-1)[::4].shape)
        return [x, t], (0,)
    return data


def d_gaussian(shape, var_shape):
    def data(rng):
        return [rng.normal(0, 1.5, shape), rng.normal(0, 1.5, shape), rng.uniform(0.1, 2.0, var_shape)], (0, 2)
    return data


def d_prob(shape=(9, 5)):
    def data(rng):
        return [rng.uniform(0.02, 0.98, shape), rng.uniform(0, 1, shape)], (0,)
    return data


def d_logits(soft=False, shape=(9, 5)):
    def data(rng):
        t = rng.uniform(0, 1, shape) if soft else (rng.random(shape) < 0.4).astype(np.float64)
        return [rng.normal(0, 2, shape), t], (0,)
    return data


def d_sign(shape=(9, 5)):
    def data(rng):
        return [rng.normal(0, 2, shape), np.where(rng.random(shape) < 0.5, -1.0, 1.0)], (0,)
    return data


def d_kl(log_target):
    def data(rng, shape=(6, 7)):
        logq = _log_softmax(rng.normal(0, 1.5, shape))
        p = np.exp(_log_softmax(rng.normal(0, 1.5, shape)))
        if not log_target:
            p[0, 0] = 0.0  # 0 log 0 = 0
            return [logq, p], (0,)
        return [logq, np.log(p)], (0,)
    return data


def d_labels(shape=(13, 7), ignore=None, n_ignore=3, logp=False, probs=False):
    """Logits (class axis 1) with integer labels or class probabilities."""
    def data(rng):
        x = rng.normal(0, 2, shape)
        C = shape[0] if len(shape) == 1 else shape[1]
        if probs:
            t = np.exp(_log_softmax(rng.normal(0, 2, shape), axis=0 if len(shape) == 1 else 1))
        else:
            items = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
            t = rng.integers(0, C, items).astype(np.int64)
            if ignore is not None:
                t.reshape(-1)[:n_ignore] = ignore
        if logp:
            x = _log_softmax(x, axis=0 if len(shape) == 1 else 1)
        return [x, t], (0,)
    return data


def d_multilabel(shape=(11, 6)):
    def data(rng):
        return [rng.normal(0, 2, shape), (rng.random(shape) < 0.4).astype(np.float64)], (0,)
    return data


def g_feat(n_ops, shape=(4, 3), target=None):
    """Rows of features for the embedding losses, all differentiable; a
    per-row target (+-1 or 0/1) or, for "elementwise", +-1 of the inputs' shape."""
    def data(rng):
        arrays = [rng.normal(0, 1, shape) for _ in range(n_ops)]
        if target == "sign":
            arrays.append(np.where(rng.random(shape[:-1]) < 0.5, -1.0, 1.0))
        elif target == "binary":
            arrays.append(rng.integers(0, 2, shape[:-1]).astype(np.float64))
        elif target == "elementwise":
            arrays.append(np.where(rng.random(shape) < 0.5, -1.0, 1.0))
        return arrays, tuple(range(n_ops))
    return data


def g_hinge_emb(shape, margin=0.75):
    """Distances (input) at least 0.1 from the margin, the hinge of target -1."""
    def data(rng):
        x = margin + np.where(rng.random(shape) < 0.5, -1, 1) * rng.uniform(0.1, 0.7, shape)
        return [x, np.where(rng.random(shape) < 0.5, -1.0, 1.0)], (0,)
    return data


def g_batch(N=12, D=4, K=3):
    """A batch of embeddings with K classes of N/K rows each."""
    def data(rng):
        return [rng.normal(0, 1, (N, D)), np.arange(N) % K], (0,)
    return data


def d_ctc(T=6, N=2, C=4, S=3):
    """CTC: log-probabilities (T, N, C), padded targets, lengths (the gradient
    is the exact one with respect to the log-probabilities)."""
    def data(rng):
        lp = _log_softmax(rng.normal(0, 1, (T, N, C)), axis=2)
        t = rng.integers(1, C, (N, S)).astype(np.int64)
        return [lp, t, np.array([T, T - 1]), np.array([S, S - 1])], (0,)
    return data


# ------------------------------------------------------------ the table

class Case(NamedTuple):
    id: str
    module: str                  # fastloss.torch module
    function: str                # fastloss.torch function
    torch_module: Callable       # torch.nn module class (or factory)
    torch_function: Callable     # torch.nn.functional function
    options: dict                # constructor / keyword options (arrays become tensors)
    data: Callable
    reductions: tuple = ("mean", "sum", "none")


_W5 = np.array([0.5, 1.0, 2.0, 0.25, 1.5])
_W7 = np.array([0.5, 1.0, 2.0, 0.25, 1.5, 3.0, 0.75])
_W6 = np.array([0.5, 1.0, 2.0, 0.25, 1.5, 3.0])
_KL_RED = ("mean", "sum", "none", "batchmean")

CASES = [
    Case("mse", "MSELoss", "mse_loss", nn.MSELoss, F.mse_loss, {}, d_reg()),
    Case("mse-3d", "MSELoss", "mse_loss", nn.MSELoss, F.mse_loss, {}, d_reg((3, 4, 5))),
    Case("l1", "L1Loss", "l1_loss", nn.L1Loss, F.l1_loss, {}, d_reg()),
    Case("huber-0.7", "HuberLoss", "huber_loss", nn.HuberLoss, F.huber_loss, {"delta": 0.7}, d_reg()),
    Case("smooth_l1-0.5", "SmoothL1Loss", "smooth_l1_loss", nn.SmoothL1Loss, F.smooth_l1_loss, {"beta": 0.5},
         d_reg()),
    Case("smooth_l1-0", "SmoothL1Loss", "smooth_l1_loss", nn.SmoothL1Loss, F.smooth_l1_loss, {"beta": 0.0},
         d_reg()),
    Case("poisson-log", "PoissonNLLLoss", "poisson_nll_loss", nn.PoissonNLLLoss, F.poisson_nll_loss, {},
         d_poisson(True)),
    Case("poisson-log-full", "PoissonNLLLoss", "poisson_nll_loss", nn.PoissonNLLLoss, F.poisson_nll_loss,
         {"full": True}, d_poisson(True)),
    Case("poisson-lin-full-eps", "PoissonNLLLoss", "poisson_nll_loss", nn.PoissonNLLLoss, F.poisson_nll_loss,
         {"log_input": False, "full": True, "eps": 1e-3}, d_poisson(False)),
    Case("gaussian-var-same", "GaussianNLLLoss", "gaussian_nll_loss", nn.GaussianNLLLoss, F.gaussian_nll_loss,
         {}, d_gaussian((9, 4), (9, 4))),
    Case("gaussian-var-N1", "GaussianNLLLoss", "gaussian_nll_loss", nn.GaussianNLLLoss, F.gaussian_nll_loss,
         {}, d_gaussian((9, 4), (9, 1))),
    Case("gaussian-var-N", "GaussianNLLLoss", "gaussian_nll_loss", nn.GaussianNLLLoss, F.gaussian_nll_loss,
         {}, d_gaussian((9, 4), (9,))),
    Case("gaussian-var-1d-same", "GaussianNLLLoss", "gaussian_nll_loss", nn.GaussianNLLLoss,
         F.gaussian_nll_loss, {"full": True}, d_gaussian((9,), (9,))),
    Case("gaussian-var-mid-axis-full", "GaussianNLLLoss", "gaussian_nll_loss", nn.GaussianNLLLoss,
         F.gaussian_nll_loss, {"full": True, "eps": 1e-3}, d_gaussian((3, 4, 5), (3, 1, 5))),
    Case("bce", "BCELoss", "binary_cross_entropy", nn.BCELoss, F.binary_cross_entropy, {}, d_prob()),
    Case("bce-weight", "BCELoss", "binary_cross_entropy", nn.BCELoss, F.binary_cross_entropy,
         {"weight": _W5}, d_prob()),
    Case("bce_logits", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits", nn.BCEWithLogitsLoss,
         F.binary_cross_entropy_with_logits, {}, d_logits()),
    Case("bce_logits-soft", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits", nn.BCEWithLogitsLoss,
         F.binary_cross_entropy_with_logits, {}, d_logits(soft=True)),
    Case("bce_logits-weight", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits", nn.BCEWithLogitsLoss,
         F.binary_cross_entropy_with_logits, {"weight": _W5}, d_logits()),
    Case("bce_logits-pos_weight", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits", nn.BCEWithLogitsLoss,
         F.binary_cross_entropy_with_logits, {"pos_weight": _W5[::-1].copy()}, d_logits()),
    Case("bce_logits-weight-pos_weight", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
         nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits,
         {"weight": _W5, "pos_weight": _W5[::-1].copy()}, d_logits(soft=True)),
    Case("soft_margin", "SoftMarginLoss", "soft_margin_loss", nn.SoftMarginLoss, F.soft_margin_loss, {},
         d_sign()),
    Case("kl", "KLDivLoss", "kl_div", nn.KLDivLoss, F.kl_div, {}, d_kl(False), _KL_RED),
    Case("kl-log_target", "KLDivLoss", "kl_div", nn.KLDivLoss, F.kl_div, {"log_target": True}, d_kl(True),
         _KL_RED),
    Case("sigmoid_focal", "SigmoidFocalLoss", "sigmoid_focal_loss", _focal_module, focal_torch, {}, d_logits()),
    Case("sigmoid_focal-a0.5-g1.5", "SigmoidFocalLoss", "sigmoid_focal_loss", _focal_module, focal_torch,
         {"alpha": 0.5, "gamma": 1.5}, d_logits(soft=True)),
    Case("sigmoid_focal-noalpha-g0", "SigmoidFocalLoss", "sigmoid_focal_loss", _focal_module, focal_torch,
         {"alpha": -1.0, "gamma": 0.0}, d_logits()),
    Case("sigmoid_focal-g3", "SigmoidFocalLoss", "sigmoid_focal_loss", _focal_module, focal_torch,
         {"gamma": 3.0}, d_logits()),
]

_ROW_CASES = [
    Case("ce", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy, {}, d_labels()),
    Case("ce-weight", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"weight": _W7}, d_labels()),
    Case("ce-ignore-default", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {}, d_labels(ignore=-100)),
    Case("ce-ignore-2", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"ignore_index": 2}, d_labels(ignore=2)),
    Case("ce-smooth", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"label_smoothing": 0.1}, d_labels()),
    Case("ce-weight-smooth-ignore", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"weight": _W7, "label_smoothing": 0.2, "ignore_index": -100}, d_labels(ignore=-100)),
    Case("ce-probs", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy, {},
         d_labels(probs=True)),
    Case("ce-probs-weight-smooth", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"weight": _W7, "label_smoothing": 0.15}, d_labels(probs=True)),
    Case("ce-spatial", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy,
         {"weight": _W5, "label_smoothing": 0.1}, d_labels(shape=(4, 5, 3, 2), ignore=-100, n_ignore=2)),
    Case("ce-unbatched", "CrossEntropyLoss", "cross_entropy", nn.CrossEntropyLoss, F.cross_entropy, {},
         d_labels(shape=(7,))),
    Case("nll", "NLLLoss", "nll_loss", nn.NLLLoss, F.nll_loss, {}, d_labels(logp=True)),
    Case("nll-weight-ignore", "NLLLoss", "nll_loss", nn.NLLLoss, F.nll_loss,
         {"weight": _W7, "ignore_index": 1}, d_labels(logp=True, ignore=1)),
    Case("nll-spatial", "NLLLoss", "nll_loss", nn.NLLLoss, F.nll_loss, {"weight": _W5},
         d_labels(shape=(4, 5, 3), logp=True)),
    Case("multi_margin", "MultiMarginLoss", "multi_margin_loss", nn.MultiMarginLoss, F.multi_margin_loss, {},
         d_labels(shape=(11, 6))),
    Case("multi_margin-p2-m0.5-weight", "MultiMarginLoss", "multi_margin_loss", nn.MultiMarginLoss,
         F.multi_margin_loss, {"p": 2, "margin": 0.5, "weight": _W6}, d_labels(shape=(11, 6))),
    Case("multilabel_soft_margin", "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
         nn.MultiLabelSoftMarginLoss, F.multilabel_soft_margin_loss, {}, d_multilabel()),
    Case("multilabel_soft_margin-weight", "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
         nn.MultiLabelSoftMarginLoss, F.multilabel_soft_margin_loss, {"weight": _W6}, d_multilabel()),
    # torch.nn.functional.multilabel_soft_margin_loss takes the classes on the
    # last axis of any shape (..., C), as fastloss does
    Case("multilabel_soft_margin-3d", "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
         nn.MultiLabelSoftMarginLoss, F.multilabel_soft_margin_loss, {}, d_multilabel((3, 4, 6))),
    # the same with as many positions as classes: a broadcast along the
    # wrong axis would run without an error here
    Case("multilabel_soft_margin-3d-square", "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss",
         nn.MultiLabelSoftMarginLoss, F.multilabel_soft_margin_loss, {}, d_multilabel((3, 4, 4))),
]

CASES += [c for c in _ROW_CASES if c.module in flt.__all__]

# the embedding losses: one gradient per differentiable operand, a per-row
# value for reduction="none" (grad_output broadcast over the features)
_EMB_CASES = [
    Case("triplet", "TripletMarginLoss", "triplet_margin_loss", nn.TripletMarginLoss, F.triplet_margin_loss,
         {"margin": 1.5}, g_feat(3, (9, 5))),
    Case("triplet-p1-swap", "TripletMarginLoss", "triplet_margin_loss", nn.TripletMarginLoss,
         F.triplet_margin_loss, {"p": 1.0, "swap": True, "margin": 2.0}, g_feat(3, (9, 5))),
    Case("triplet-unbatched", "TripletMarginLoss", "triplet_margin_loss", nn.TripletMarginLoss,
         F.triplet_margin_loss, {"margin": 3.0}, g_feat(3, (6,))),
    Case("triplet_distance", "TripletMarginWithDistanceLoss", "triplet_margin_with_distance_loss",
         nn.TripletMarginWithDistanceLoss, F.triplet_margin_with_distance_loss, {"margin": 1.5, "swap": True},
         g_feat(3, (9, 5))),
    Case("cosine_embedding", "CosineEmbeddingLoss", "cosine_embedding_loss", nn.CosineEmbeddingLoss,
         F.cosine_embedding_loss, {"margin": -0.3}, g_feat(2, (9, 5), target="sign")),
    Case("margin_ranking", "MarginRankingLoss", "margin_ranking_loss", nn.MarginRankingLoss,
         F.margin_ranking_loss, {"margin": 0.2}, g_feat(2, (9, 5), target="elementwise")),
    Case("hinge_embedding", "HingeEmbeddingLoss", "hinge_embedding_loss", nn.HingeEmbeddingLoss,
         F.hinge_embedding_loss, {"margin": 0.75}, g_hinge_emb((9, 5))),
]
CASES += [c for c in _EMB_CASES if c.module in flt.__all__]

PARAMS = [pytest.param(c, r, id=f"{c.id}-{r}") for c in CASES for r in c.reductions]


def _operands(arrays, diff, dtype):
    ops = [_to_tensor(a, dtype) for a in arrays]
    for i in diff:
        ops[i].requires_grad_(True)
    return ops


def _run_pair(case, dtype, reduction, form, rng):
    """(fastloss output, torch output, fastloss operands, torch operands, diff)."""
    arrays, diff = case.data(rng)
    ops = _operands(arrays, diff, dtype)
    # the reference: torch in float64 on the same (dtype-rounded) numbers
    ref_ops = [o.detach().to(torch.float64) if o.is_floating_point() else o.clone() for o in ops]
    for i in diff:
        ref_ops[i].requires_grad_(True)
    opts = _opts(case.options, dtype)
    ref_opts = {k: v.to(torch.float64) if isinstance(v, torch.Tensor) else v for k, v in opts.items()}
    if form == "module":
        out = getattr(flt, case.module)(**opts, reduction=reduction)(*ops)
        ref = case.torch_module(**ref_opts, reduction=reduction)(*ref_ops)
    else:
        out = getattr(flt, case.function)(*ops, **opts, reduction=reduction)
        ref = case.torch_function(*ref_ops, **ref_opts, reduction=reduction)
    return out, ref, ops, ref_ops, diff


# ------------------------------------------------- 1. equal to PyTorch

@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("form", ["module", "function"])
@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("case, reduction", PARAMS)
def test_matches_torch(case, reduction, dtype, form):
    rng = np.random.default_rng(_seed(case.id, reduction, form))
    out, ref, ops, ref_ops, diff = _run_pair(case, dtype, reduction, form, rng)
    what = f"{case.id} {form} {_dtype_id(dtype)} {reduction}"
    assert out.dtype == dtype, f"{what}: output dtype {out.dtype}"
    assert out.requires_grad, f"{what}: output does not require grad"
    assert_close(out, ref, dtype, what + " value")
    # a random upstream gradient: checks the multiplication by grad_output
    u = torch.from_numpy(np.asarray(rng.uniform(0.5, 2.0, tuple(ref.shape))
                                    * rng.choice([-1.0, 1.0], tuple(ref.shape))))
    u32 = u.to(dtype)
    (out * u32).sum().backward()
    (ref * u32.to(torch.float64)).sum().backward()
    names = ["input", "target", "var"]
    for i in diff:
        assert ops[i].grad is not None, f"{what}: no gradient for {names[i]}"
        assert ops[i].grad.dtype == dtype and ops[i].grad.shape == ops[i].shape, f"{what}: grad of {names[i]}"
        assert_close(ops[i].grad, ref_ops[i].grad, dtype, f"{what} grad {names[i]}")


def test_row_losses_present():
    """The row losses (cross-entropy etc.) are compared above when fastloss has them."""
    have = [c.module for c in _ROW_CASES if c.module in flt.__all__]
    if not have:
        pytest.skip("fastloss has no row losses yet")
    assert {"CrossEntropyLoss", "NLLLoss", "MultiMarginLoss", "MultiLabelSoftMarginLoss"} <= set(have)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gaussian_scalar_var_tensor(reduction):
    """A 0-d var tensor for a 1-d input (torch: 'one dimension fewer')."""
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    t = torch.randn(8, dtype=torch.float64)
    v = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    x2, v2 = x.detach().clone().requires_grad_(True), v.detach().clone().requires_grad_(True)
    out = flt.gaussian_nll_loss(x, t, v, reduction=reduction)
    ref = F.gaussian_nll_loss(x2, t, v2, reduction=reduction)
    assert_close(out, ref, torch.float64, "value")
    out.sum().backward()
    ref.sum().backward()
    assert v.grad.shape == ()
    assert_close(x.grad, x2.grad, torch.float64, "grad input")
    assert_close(v.grad, v2.grad, torch.float64, "grad var")


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gaussian_float_var(reduction):
    """torch.nn.functional.gaussian_nll_loss takes a Python float var
    (``var: Tensor | float``); so should the drop-in."""
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, dtype=torch.float64)
    x2 = x.detach().clone().requires_grad_(True)
    out = flt.gaussian_nll_loss(x, t, 0.5, reduction=reduction)
    ref = F.gaussian_nll_loss(x2, t, 0.5, reduction=reduction)
    assert_close(out, ref, torch.float64, "value")
    out.sum().backward()
    ref.sum().backward()
    assert_close(x.grad, x2.grad, torch.float64, "grad input")
    out = flt.GaussianNLLLoss(reduction=reduction)(x, t, 0.5)
    assert_close(out, ref, torch.float64, "module value")


def test_gaussian_var_grad_only():
    """var requiring grad while input does not: the gradient reaches var only."""
    x = torch.randn(5, 3, dtype=torch.float64)
    t = torch.randn(5, 3, dtype=torch.float64)
    v = torch.rand(5, 1, dtype=torch.float64).add_(0.2).requires_grad_(True)
    v2 = v.detach().clone().requires_grad_(True)
    flt.GaussianNLLLoss()(x, t, v).backward()
    F.gaussian_nll_loss(x, t, v2).backward()
    assert_close(v.grad, v2.grad, torch.float64, "grad var")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_forward_weight_pointwise(reduction):
    """The per-element ``weight=`` of forward (a fastloss extension) is the
    weighted torch loss (mean divides by the element count)."""
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(7, 4, dtype=torch.float64)
    w = torch.rand(7, 4, dtype=torch.float64)
    x2 = x.detach().clone().requires_grad_(True)
    out = flt.HuberLoss(delta=0.8, reduction=reduction)(x, t, weight=w)
    el = F.huber_loss(x2, t, delta=0.8, reduction="none") * w
    ref = {"mean": el.mean, "sum": el.sum}.get(reduction, lambda: el)()
    assert_close(out, ref, torch.float64, "value")
    out.sum().backward()
    ref.sum().backward()
    assert_close(x.grad, x2.grad, torch.float64, "grad")


@pytest.mark.skipif("CrossEntropyLoss" not in flt.__all__, reason="no CrossEntropyLoss yet")
def test_forward_weight_replaces_class_weight():
    x = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (9,))
    w = torch.tensor(_W5)
    x2 = x.detach().clone().requires_grad_(True)
    out = flt.CrossEntropyLoss(weight=torch.ones(5, dtype=torch.float64))(x, y, weight=w)
    ref = F.cross_entropy(x2, y, weight=w)
    assert_close(out, ref, torch.float64, "value")
    out.backward()
    ref.backward()
    assert_close(x.grad, x2.grad, torch.float64, "grad")


def test_non_contiguous_and_non_leaf():
    base = torch.randn(6, 8, dtype=torch.float32, requires_grad=True)
    t = torch.randn(8, 6, dtype=torch.float32)
    x = (base * 2).t()  # non-leaf, transposed
    base2 = base.detach().clone().requires_grad_(True)
    out = flt.smooth_l1_loss(x, t, beta=0.5)
    ref = F.smooth_l1_loss((base2.double() * 2).t(), t.double(), beta=0.5)
    assert_close(out, ref, torch.float32, "value")
    out.backward()
    ref.backward()
    assert_close(base.grad, base2.grad, torch.float32, "grad")


def test_one_kernel_call_and_zero_copy():
    """forward calls the fused kernel once on memory shared with the tensors;
    backward does not call it again."""
    m = flt.BCEWithLogitsLoss()
    calls = []
    loss = m._fl_loss()  # the fastloss object behind the module (cached while the options stay)
    orig = loss.value_and_grad
    x = torch.randn(16, 3, requires_grad=True)
    t = (torch.rand(16, 3) < 0.5).float()

    def spy(*arrays, **kw):
        calls.append((np.shares_memory(arrays[0], x.detach().numpy()),
                      np.shares_memory(arrays[1], t.numpy())))
        return orig(*arrays, **kw)

    loss.value_and_grad = spy
    out = m(x, t)
    out.backward()
    assert calls == [(True, True)]
    assert torch.allclose(x.grad, (torch.sigmoid(x) - t).detach() / x.numel(), rtol=1e-5, atol=1e-7)


def test_edge_inputs():
    """Empty batches, stride-0 (expanded) operands, mixed operand dtypes."""
    x = torch.empty(0, 3, requires_grad=True)
    out = flt.mse_loss(x, torch.empty(0, 3))
    assert torch.isnan(out) and torch.isnan(F.mse_loss(x, torch.empty(0, 3)))
    out.backward()
    assert x.grad.shape == (0, 3)
    assert flt.MSELoss(reduction="none")(x, torch.empty(0, 3)).shape == (0, 3)
    # an expanded input: autograd sums the per-element gradient back
    b = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    b2 = b.detach().clone().requires_grad_(True)
    t = torch.randn(4, 3, dtype=torch.float64)
    flt.mse_loss(b.expand(4, 3), t).backward()
    F.mse_loss(b2.expand(4, 3), t).backward()
    assert_close(b.grad, b2.grad, torch.float64, "expanded input grad")
    # input fixes the dtype; a float64 target or var is converted, var's gradient keeps var's dtype
    x = torch.randn(4, 3, requires_grad=True)
    v = (torch.rand(4, 3, dtype=torch.float64) + 0.1).requires_grad_(True)
    out = flt.gaussian_nll_loss(x, torch.randn(4, 3, dtype=torch.float64), v)
    assert out.dtype == torch.float32
    out.backward()
    assert x.grad.dtype == torch.float32 and v.grad.dtype == torch.float64


def test_n_threads_option():
    x = torch.randn(300, 7, dtype=torch.float64, requires_grad=True)
    t = torch.randn(300, 7, dtype=torch.float64)
    a = flt.MSELoss(n_threads=1)(x, t)
    b = flt.mse_loss(x, t, n_threads=2)
    assert a.item() == b.item()


def test_no_grad_and_detached():
    x = torch.randn(5, 3)
    t = torch.randn(5, 3)
    with torch.no_grad():
        out = flt.MSELoss()(x.requires_grad_(True), t)
    assert not out.requires_grad
    out = flt.mse_loss(x.detach(), t)
    assert not out.requires_grad
    assert out.item() == pytest.approx(F.mse_loss(x.detach(), t).item(), rel=1e-6)


def test_double_backward_is_not_silently_zero():
    """The saved gradient is a constant, so a second derivative through this
    Function is not available.  It must fail loudly (as with
    ``torch.autograd.function.once_differentiable``), not hand back a
    first-order gradient that silently ignores ``create_graph=True`` (a
    gradient penalty built on it would contribute nothing)."""
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, dtype=torch.float64)
    (g,) = torch.autograd.grad(flt.mse_loss(x, t), x, create_graph=True)
    assert g.requires_grad, ("create_graph=True gave a gradient detached from the graph: "
                             "a second derivative through it is silently zero")
    try:
        g.pow(2).sum().backward()
    except RuntimeError:
        return  # refused loudly (once_differentiable): fine
    # or supported: then it must be right (d/dx sum(g^2), g = 2 (x - t) / n)
    torch.testing.assert_close(x.grad, 8 * (x.detach() - t) / 25)


def test_module_forward_keywords():
    """torch.nn loss modules take their operands by keyword too
    (``criterion(input=..., target=...)``); the drop-in should."""
    x = torch.randn(4, 3, requires_grad=True)
    t = torch.randn(4, 3)
    assert torch.allclose(flt.MSELoss()(input=x, target=t), nn.MSELoss()(input=x, target=t))
    v = torch.rand(4, 3) + 0.1
    assert torch.allclose(flt.GaussianNLLLoss()(x, t, var=v), nn.GaussianNLLLoss()(x, t, var=v))


# ------------------------------------------------------------ 2. gradcheck

class GCase(NamedTuple):
    id: str
    module: str
    options: dict
    data: Callable


def g_away(kink=0.0, shape=(4, 3)):
    """input and target with input - target at least 0.2 from +-kink."""
    def data(rng):
        x = rng.normal(0, 1.5, shape)
        d = rng.uniform(0.2, 1.5, shape) * np.where(rng.random(shape) < 0.5, -1, 1)
        if kink:
            d = np.where(rng.random(shape) < 0.5, d * 0.5 * kink / 1.5, np.sign(d) * (kink + np.abs(d)))
            d = np.where(np.abs(np.abs(d) - kink) < 0.1, np.sign(d) * (kink + 0.2), d)
        return [x, x - d], (0,)
    return data


def g_hinge(shape=(4, 3)):
    def data(rng):
        t = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        m = 1 + rng.uniform(0.2, 1.5, shape) * np.where(rng.random(shape) < 0.5, -1, 1)  # t x away from 1
        return [t * m, t], (0,)
    return data


def g_margin_grid(shape=(4, 5)):
    """Logits on a 0.5-grid, so with margin 0.75 no term sits at its kink."""
    def data(rng):
        x = np.stack([rng.permutation(shape[1]) * 0.5 - 1.0 for _ in range(shape[0])])
        return [x, rng.integers(0, shape[1], shape[0]).astype(np.int64)], (0,)
    return data


GCASES = [
    GCase("mse", "MSELoss", {}, d_reg((4, 3))),
    GCase("l1", "L1Loss", {}, g_away()),
    GCase("huber", "HuberLoss", {"delta": 0.7}, g_away(0.7)),
    GCase("smooth_l1", "SmoothL1Loss", {"beta": 0.5}, g_away(0.5)),
    GCase("log_cosh", "LogCoshLoss", {}, d_reg((4, 3))),
    GCase("quantile", "QuantileLoss", {"quantile": 0.3}, g_away()),
    GCase("poisson-log", "PoissonNLLLoss", {"full": True}, d_poisson(True)),
    GCase("poisson-lin", "PoissonNLLLoss", {"log_input": False}, d_poisson(False)),
    GCase("gaussian-same", "GaussianNLLLoss", {}, d_gaussian((4, 3), (4, 3))),
    GCase("gaussian-N1", "GaussianNLLLoss", {"full": True}, d_gaussian((4, 3), (4, 1))),
    GCase("gaussian-N", "GaussianNLLLoss", {}, d_gaussian((4, 3), (4,))),
    GCase("bce", "BCELoss", {"weight": _W5[:3]}, d_prob((4, 3))),
    GCase("bce_logits", "BCEWithLogitsLoss", {"weight": _W5[:3], "pos_weight": _W5[2:]}, d_logits(True, (4, 3))),
    GCase("sigmoid_focal", "SigmoidFocalLoss", {}, d_logits(False, (4, 3))),
    GCase("sigmoid_focal-g1.5", "SigmoidFocalLoss", {"alpha": 0.6, "gamma": 1.5}, d_logits(True, (4, 3))),
    GCase("hinge", "HingeLoss", {}, g_hinge()),
    GCase("squared_hinge", "SquaredHingeLoss", {}, g_hinge()),
    GCase("soft_margin", "SoftMarginLoss", {}, d_sign((4, 3))),
    GCase("kl", "KLDivLoss", {}, d_kl(False)),
    GCase("kl-log_target", "KLDivLoss", {"log_target": True}, d_kl(True)),
    GCase("ce", "CrossEntropyLoss", {"weight": _W5, "label_smoothing": 0.1}, d_labels((4, 5), ignore=-100,
                                                                                      n_ignore=1)),
    GCase("ce-probs", "CrossEntropyLoss", {}, d_labels((4, 5), probs=True)),
    GCase("ce-spatial", "CrossEntropyLoss", {}, d_labels((2, 5, 3))),
    GCase("nll", "NLLLoss", {"weight": _W5}, d_labels((4, 5), logp=True)),
    GCase("softmax_focal", "SoftmaxFocalLoss", {"gamma": 2.0}, d_labels((4, 5))),
    GCase("poly1", "Poly1CrossEntropyLoss", {"epsilon": 1.0}, d_labels((4, 5))),
    GCase("multi_margin-p1", "MultiMarginLoss", {"margin": 0.75}, g_margin_grid()),
    GCase("multi_margin-p2", "MultiMarginLoss", {"p": 2, "weight": _W5}, d_labels((4, 5))),
    GCase("multilabel_soft_margin", "MultiLabelSoftMarginLoss", {"weight": _W5}, d_multilabel((4, 5))),
    GCase("ctc", "CTCLoss", {"blank": 0}, d_ctc()),
]


def g_positive(shape=(4, 3), zeros=False):
    """A raw prediction (log link) and positive targets (some 0 with zeros=True)."""
    def data(rng):
        t = rng.gamma(2.0, 1.0, shape)
        if zeros:
            t.reshape(-1)[::3] = 0.0
        return [rng.normal(0, 1, shape), t], (0,)
    return data


def g_msle(shape=(4, 3)):
    def data(rng):  # inputs above Keras's clamp at 1e-7
        return [rng.uniform(0.2, 3.0, shape), rng.uniform(0.0, 3.0, shape)], (0,)
    return data


def g_distinct(shape=(4, 5)):
    """Residuals whose losses are well apart, so a small step keeps the trimmed set."""
    def data(rng):
        d = (rng.permutation(shape[0] * shape[1]) * 0.25 + 0.3) * np.where(rng.random(shape[0] * shape[1]) < 0.5, -1, 1)
        x = rng.normal(0, 1, shape)
        return [x, x - d.reshape(shape)], (0,)
    return data


GCASES += [  # the regression catalogue (fastloss._regression_losses)
    GCase("gamma_nll", "GammaNLLLoss", {}, g_positive()),
    GCase("tweedie-1.5", "TweedieLoss", {"power": 1.5}, g_positive(zeros=True)),
    GCase("pseudo_huber", "PseudoHuberLoss", {"delta": 0.8}, d_reg((4, 3))),
    GCase("fair", "FairLoss", {"c": 1.3}, d_reg((4, 3))),
    GCase("cauchy", "CauchyLoss", {"c": 1.3}, d_reg((4, 3))),
    GCase("tukey", "TukeyBiweightLoss", {"c": 2.0}, g_away(2.0)),
    GCase("expectile", "ExpectileLoss", {"tau": 0.3}, g_away()),
    GCase("mape", "MeanAbsolutePercentageError", {}, g_away()),
    GCase("msle", "MeanSquaredLogarithmicError", {}, g_msle()),
    GCase("trimmed-huber", "Trimmed", {"loss": fl.HuberLoss(delta=1.0), "trim": 0.2}, g_distinct()),
    GCase("trimmed-upper-mse", "Trimmed", {"loss": fl.MSELoss(), "trim": 0.3, "tails": "upper"}, g_distinct()),
    GCase("winsorized-huber", "Winsorized", {"loss": fl.HuberLoss(delta=1.0), "limit": 0.2}, g_distinct()),
]


def d_seg(kind, shape=(2, 3, 4, 3)):
    """Set-overlap losses: logits and labels (or a mask) of a small batch."""
    def data(rng):
        x = rng.normal(0, 1.5, shape)
        if kind == "labels":
            return [x, rng.integers(0, shape[1], shape[:1] + shape[2:]).astype(np.int64)], (0,)
        if kind == "binary":
            return [x[:, 0], (rng.random(x[:, 0].shape) > 0.5).astype(float)], (0,)
        return [x, (rng.random(shape) > 0.5).astype(float)], (0,)
    return data


def d_boxes(same_aspect=False, n=5):
    """Box pairs away from ties; same_aspect=True gives CIoU's aspect term a
    zero derivative (its alpha is a constant in torchvision's gradient, so
    gradcheck applies only where that term is flat)."""
    def data(rng):
        b1 = rng.uniform(0, 4, (n, 4))
        b1[:, 2:] = b1[:, :2] + rng.uniform(0.5, 3, (n, 2))
        b2 = b1 + rng.normal(0, 0.7, (n, 4))
        b2[:, 2:] = b2[:, :2] + rng.uniform(0.5, 3, (n, 2))
        if same_aspect:
            s = rng.uniform(0.5, 2, (n, 1))
            b2[:, 2:] = b2[:, :2] + (b1[:, 2:] - b1[:, :2]) * s
        return [b1, b2], (0, 1)
    return data


GCASES += [
    GCase("dice", "DiceLoss", {"mode": "multiclass", "smooth": 0.5}, d_seg("labels")),
    GCase("jaccard", "JaccardLoss", {"mode": "multilabel", "per_image": True}, d_seg("mask")),
    GCase("tversky", "TverskyLoss", {"mode": "binary", "alpha": 0.3, "beta": 0.7, "gamma": 1.5}, d_seg("binary")),
    GCase("bce_dice", "BCEDiceLoss", {"mode": "multilabel"}, d_seg("mask")),
    GCase("ce_dice", "CEDiceLoss", {"per_image": True}, d_seg("labels")),
    GCase("lovasz_hinge", "LovaszHingeLoss", {"per_image": True}, d_seg("binary")),
    GCase("lovasz_softmax", "LovaszSoftmaxLoss", {}, d_seg("labels")),
    GCase("box_iou", "BoxIoULoss", {}, d_boxes()),
    GCase("giou", "GeneralizedBoxIoULoss", {}, d_boxes()),
    GCase("diou", "DistanceBoxIoULoss", {}, d_boxes()),
    GCase("ciou", "CompleteBoxIoULoss", {}, d_boxes(same_aspect=True)),
]

GCASES += [
    GCase("triplet-swap", "TripletMarginLoss", {"margin": 0.5, "swap": True}, g_feat(3)),
    GCase("triplet-p3", "TripletMarginLoss", {"p": 3.0}, g_feat(3)),
    GCase("triplet_distance-cosine", "TripletMarginWithDistanceLoss",
          {"distance_function": "cosine", "margin": 0.5}, g_feat(3)),
    GCase("cosine_embedding", "CosineEmbeddingLoss", {"margin": 0.1}, g_feat(2, target="sign")),
    GCase("margin_ranking", "MarginRankingLoss", {"margin": 0.1}, g_feat(2, target="elementwise")),
    GCase("hinge_embedding", "HingeEmbeddingLoss", {"margin": 0.75}, g_hinge()),
    GCase("contrastive", "ContrastiveLoss", {"margin": 2.0}, g_feat(2, target="binary")),
    GCase("cosine_distance", "CosineDistanceLoss", {}, g_feat(2)),
    GCase("batch_hard", "BatchHardTripletLoss", {"margin": 0.5}, g_batch()),
    GCase("batch_all", "BatchAllTripletLoss", {"margin": 0.5}, g_batch()),
    GCase("nt_xent", "NTXentLoss", {"temperature": 0.5}, g_batch()),
]


def g_gen(kind):
    """The generative and RL objectives (issue 14): operands away from their kinks."""
    def data(rng):
        if kind == "kl":
            return [rng.normal(0, 1, (4, 3)), rng.normal(0, 1, (4, 3))], (0, 1)
        if kind == "vae":
            return [rng.normal(0, 1, (4, 5)), rng.uniform(0, 1, (4, 5)), rng.normal(0, 1, (4, 2)),
                    rng.normal(0, 1, (4, 2))], (0, 2, 3)
        if kind == "disc":
            return [rng.normal(0, 2, 5), rng.normal(0, 2, 3)], (0, 1)
        if kind == "gen":
            return [rng.normal(0, 2, 6)], (0,)
        if kind == "gp":
            return [rng.normal(0, 1, (4, 3))], (0,)
        if kind == "pg":
            return [rng.normal(-1, 0.5, 6), rng.normal(0, 1, 6)], (0,)
        if kind == "ppo":   # ratios 0.9 .. 1.1: inside the clip
            old = rng.normal(-1, 0.5, 6)
            return [old + rng.uniform(-0.09, 0.09, 6), old, rng.normal(0, 1, 6)], (0,)
        if kind == "pg_logits":   # (6, 4) logits, actions, advantages
            return [rng.normal(0, 1, (6, 4)), rng.integers(0, 4, 6), rng.normal(0, 1, 6)], (0,)
        if kind == "ppo_logits":  # old log-probs near the new ones: ratios inside the clip
            z = rng.normal(0, 1, (6, 4))
            act = rng.integers(0, 4, 6)
            lp = z[np.arange(6), act] - np.log(np.exp(z).sum(1))
            return [z, act, lp + rng.uniform(-0.09, 0.09, 6), rng.normal(0, 1, 6)], (0,)
        if kind == "value":  # |v - old| < clip_eps: no clipping kink
            v = rng.normal(0, 1, 6)
            return [v, rng.normal(0, 1, 6), v + rng.uniform(-0.3, 0.3, 6)], (0,)
        return [rng.normal(0, 1, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6),
                (rng.random(6) < 0.3).astype(float)], (0,)
    return data


GCASES += [
    GCase("gaussian_kl", "GaussianKLLoss", {}, g_gen("kl")),
    GCase("vae", "VAELoss", {"beta": 0.5}, g_gen("vae")),
    GCase("gan_disc", "GANDiscriminatorLoss", {"kind": "minimax", "label_smoothing": 0.1}, g_gen("disc")),
    GCase("gan_gen", "GANGeneratorLoss", {"kind": "least_squares"}, g_gen("gen")),
    GCase("gradient_penalty", "GradientPenalty", {}, g_gen("gp")),
    GCase("policy_gradient", "PolicyGradientLoss", {}, g_gen("pg")),
    GCase("ppo", "PPOClipLoss", {"clip_eps": 0.2}, g_gen("ppo")),
    GCase("value", "ValueLoss", {"clip_eps": 0.5, "kind": "huber"}, g_gen("value")),
    GCase("td", "TDLoss", {"gamma": 0.9}, g_gen("td")),
    GCase("pg_logits", "PolicyGradientLossFromLogits", {"entropy_coef": 0.1}, g_gen("pg_logits")),
    GCase("ppo_logits", "PPOClipLossFromLogits", {"clip_eps": 0.2, "entropy_coef": 0.1}, g_gen("ppo_logits")),
    GCase("combined", "CombinedLoss", {"terms": [(1.0, fl.MSELoss()), (0.5, fl.L1Loss(reduction="sum"))]},
          g_away()),
]
GCASES = [c for c in GCASES if c.module in flt.__all__]


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("case", GCASES, ids=lambda c: c.id)
def test_gradcheck(case, reduction):
    if reduction not in getattr(getattr(fl, case.module), "_reductions", (reduction,)):
        pytest.skip(f"{case.module} has no reduction={reduction!r}")
    rng = np.random.default_rng(_seed("gradcheck", case.id))
    arrays, diff = case.data(rng)
    ops = _operands(arrays, diff, torch.float64)
    loss = getattr(flt, case.module)(**_opts(case.options, torch.float64), reduction=reduction)

    def f(*leaves):
        full = list(ops)
        for i, leaf in zip(diff, leaves):
            full[i] = leaf
        return loss(*full)

    assert torch.autograd.gradcheck(f, tuple(ops[i] for i in diff), eps=1e-6, atol=1e-5)


def test_gradcheck_covers_every_module():
    """Every module of fastloss.torch has a gradcheck case above."""
    modules = {n for n in flt.__all__ if inspect.isclass(getattr(flt, n))}
    assert modules - {c.module for c in GCASES} == set()


@pytest.mark.parametrize("var_shape", [(4, 3), (4, 1), (4,)], ids=str)
def test_gradcheck_gaussian_function(var_shape):
    rng = np.random.default_rng(_seed("gaussian-fn", var_shape))
    x = torch.from_numpy(rng.normal(0, 1, (4, 3))).requires_grad_(True)
    t = torch.from_numpy(rng.normal(0, 1, (4, 3)))
    v = torch.from_numpy(rng.uniform(0.3, 2, var_shape)).requires_grad_(True)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda a, b: flt.gaussian_nll_loss(a, t, b, full=True, reduction=reduction), (x, v),
            eps=1e-6, atol=1e-5)


# ------------------------------------------------- 3. training equivalence

def _task(name, dtype):
    """(model, fastloss loss, torch loss, X, Y, n_out): the loss takes (model output, Y)."""
    g = torch.Generator().manual_seed(_seed("task", name))
    N, D = 64, 10
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    teacher = torch.randn(D, 4, generator=g, dtype=torch.float64)
    Z = X @ teacher
    if name == "mse":
        Y, fl_loss, t_loss, k = Z[:, :3], flt.MSELoss(), nn.MSELoss(), 3
    elif name == "bce_logits":
        pw = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=dtype)
        Y = (Z > 0).to(torch.float64)
        fl_loss, t_loss, k = flt.BCEWithLogitsLoss(pos_weight=pw), nn.BCEWithLogitsLoss(pos_weight=pw), 4
    elif name == "cross_entropy":
        Y = Z.argmax(1)
        Y[::9] = -100
        w = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=dtype)
        kw = {"weight": w, "label_smoothing": 0.1}
        fl_loss, t_loss, k = flt.CrossEntropyLoss(**kw), nn.CrossEntropyLoss(**kw), 4
    elif name == "gaussian":
        # the model predicts a mean and a variance: the gradient reaches the model through var too
        Y = Z[:, :1] + 0.3 * torch.randn(N, 1, generator=g, dtype=torch.float64)
        k = 2
        fl_g, t_g = flt.GaussianNLLLoss(), nn.GaussianNLLLoss()

        def fl_loss(out, y):
            return fl_g(out[:, :1], y, F.softplus(out[:, 1]) + 0.05)

        def t_loss(out, y):
            return t_g(out[:, :1], y, F.softplus(out[:, 1]) + 0.05)
    else:  # pragma: no cover
        raise ValueError(name)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, k)).to(dtype)
    Y = Y.to(dtype) if Y.is_floating_point() else Y
    return model, fl_loss, t_loss, X.to(dtype), Y


def _train(model, loss_fn, X, Y, steps=50, batch=16):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for s in range(steps):
        i = (s * batch) % X.shape[0]
        opt.zero_grad()
        loss = loss_fn(model(X[i:i + batch]), Y[i:i + batch])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


TASKS = ["mse", "bce_logits", "gaussian"] + (["cross_entropy"] if "CrossEntropyLoss" in flt.__all__ else [])


@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-9, 1e-12), (torch.float32, 1e-4, 1e-6)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("task", TASKS)
def test_training_equivalence(task, dtype, rtol, atol):
    model, fl_loss, t_loss, X, Y = _task(task, dtype)
    twin = copy.deepcopy(model)
    before = [p.detach().clone() for p in model.parameters()]
    fl_losses = _train(model, fl_loss, X, Y)
    t_losses = _train(twin, t_loss, X, Y)
    np.testing.assert_allclose(fl_losses, t_losses, rtol=rtol * 10, atol=atol)
    assert fl_losses[-1] < fl_losses[0], "training did not reduce the loss"
    for (name, a), b, b0 in zip(model.named_parameters(), twin.parameters(), before):
        assert a.dtype == dtype
        assert not torch.equal(a, b0), f"{name} did not move"
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"{task} {name}: {m}")


# ------------------------------------------------------- 4. torch.compile

@pytest.fixture
def dynamo_reset():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compile_setup():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4 + 2 + 5)).double()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    y_bin = (torch.rand(12, 4, generator=g) < 0.5).double()
    y_reg = torch.randn(12, generator=g, dtype=torch.float64)
    y_cls = torch.randint(0, 5, (12,), generator=g)
    bce = flt.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64))
    ce = flt.CrossEntropyLoss(label_smoothing=0.1) if "CrossEntropyLoss" in flt.__all__ else None

    def step(x, y_bin, y_reg, y_cls):
        out = model(x)
        losses = [bce(out[:, :4], y_bin),
                  flt.gaussian_nll_loss(out[:, 4], y_reg, F.softplus(out[:, 5]) + 0.1)]
        if ce is not None:
            losses.append(ce(out[:, 6:], y_cls))
        return losses

    return model, step, (x, y_bin, y_reg, y_cls)


def _losses_and_grads(model, fn, args):
    model.zero_grad()
    losses = fn(*args)
    sum(losses).backward()
    return [v.detach().clone() for v in losses], [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("backend", ["eager", "aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile(backend, dynamo_reset, request):
    if backend == "inductor" and "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("inductor's first compile takes ~30 s here (C++ codegen): run with -m slow")
    model, step, args = _compile_setup()
    ref_losses, ref_grads = _losses_and_grads(model, step, args)
    compiled = torch.compile(step, backend=backend)
    for _ in range(2):  # the second call runs the cached graphs
        losses, grads = _losses_and_grads(model, compiled, args)
        assert len(losses) == len(ref_losses)
        for a, b in zip(losses, ref_losses):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------- 5. errors

def _x(*shape, dtype=torch.float32, grad=True):
    return torch.randn(*shape, dtype=dtype).requires_grad_(grad)


@pytest.mark.parametrize("form", ["module", "function"])
def test_non_cpu_tensor(form):
    meta = torch.empty(3, device="meta")
    call = (lambda *a: flt.MSELoss()(*a)) if form == "module" else flt.mse_loss
    with pytest.raises(TypeError, match=r"input is on meta"):
        call(meta, torch.zeros(3))
    with pytest.raises(TypeError, match=r"target is on meta"):
        call(torch.zeros(3), meta)
    with pytest.raises(TypeError, match=r"var is on meta"):
        flt.GaussianNLLLoss()(torch.zeros(3), torch.zeros(3), meta)
    with pytest.raises(TypeError, match=r"weight is on meta"):
        flt.MSELoss()(torch.zeros(3), torch.zeros(3), weight=meta)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.complex64],
                         ids=_dtype_id)
def test_bad_input_dtype(dtype):
    x = torch.ones(4, 3).to(dtype)
    t = torch.zeros(4, 3)
    with pytest.raises(TypeError, match=r"input must be float32 or float64"):
        flt.MSELoss()(x, t)
    with pytest.raises(TypeError, match=r"input must be float32 or float64"):
        flt.binary_cross_entropy_with_logits(x, t)
    with pytest.raises(TypeError, match=r"var must be float32 or float64"):
        flt.gaussian_nll_loss(torch.zeros(4, 3), t, torch.ones(4, 3).to(dtype))


def test_target_requires_grad():
    """A target that requires grad is an error only for the losses without
    a target gradient (PyTorch's soft_margin_loss has none either; see
    test_torch_dropin.py for the target gradients)."""
    x = _x(4, 3)
    with pytest.raises(ValueError, match=r"target requires grad"):
        flt.SoftMarginLoss()(x, _x(4, 3))
    with pytest.raises(ValueError, match=r"target requires grad"):
        flt.soft_margin_loss(x, _x(4, 3))
    with pytest.raises(ValueError, match=r"target requires grad"):
        flt.SigmoidFocalLoss()(x, _x(4, 3))
    with pytest.raises(ValueError, match=r"weight requires grad"):
        flt.MSELoss()(x, torch.zeros(4, 3), weight=_x(4, 3))
    with pytest.raises(ValueError, match=r"pos_weight requires grad"):
        flt.BCEWithLogitsLoss(pos_weight=_x(3))


def test_wrong_operand_count():
    x, t = _x(4, 3), torch.zeros(4, 3)
    with pytest.raises(TypeError, match=r"forward takes \(input, target\), got 1"):
        flt.MSELoss()(x)
    with pytest.raises(TypeError, match=r"forward takes \(input, target\), got 3"):
        flt.MSELoss()(x, t, t)
    with pytest.raises(TypeError, match=r"forward takes \(input, target, var\), got 2"):
        flt.GaussianNLLLoss()(x, t)
    with pytest.raises(TypeError):
        flt.mse_loss(x)
    with pytest.raises(TypeError):
        flt.gaussian_nll_loss(x, t)
    with pytest.raises(TypeError, match=r"return_grad= is not an argument"):
        flt.mse_loss(x, t, return_grad=True)
    with pytest.raises(TypeError, match=r"out= is not an argument"):
        flt.mse_loss(x, t, out=np.empty((4, 3), np.float32))


def test_fastloss_errors_pass_through():
    """fastloss's own argument checks reach the user unchanged."""
    with pytest.raises(ValueError, match=r"shape"):
        flt.mse_loss(_x(4, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError):
        flt.HuberLoss(delta=-1.0)
    with pytest.raises(ValueError):
        flt.MSELoss(reduction="avg")
    with pytest.raises(ValueError):
        flt.gaussian_nll_loss(_x(4), torch.zeros(4), -torch.ones(4))


# ---------------------------------------------------------- 6. genericity

def _fastloss_losses():
    """(name, kind) of every loss fastloss exports, by the rule fastloss.torch
    documents: a class with value_and_grad, or a function with a return_grad
    parameter and input (or the operands its _grad_args names) among its
    parameters."""
    out = []
    for name in fl.__all__:
        obj = getattr(fl, name, None)
        if inspect.isclass(obj) and hasattr(obj, "value_and_grad"):
            out.append((name, "module"))
        elif inspect.isfunction(obj):
            params = inspect.signature(obj).parameters
            ops = getattr(obj, "_grad_args", ("input",))
            if "return_grad" in params and ("input" in params or all(a in params for a in ops)):
                out.append((name, "function"))
    return out


def test_every_fastloss_loss_is_adapted():
    losses = _fastloss_losses()
    names = {n for n, _ in losses}
    assert {"MSELoss", "mse_loss", "GaussianNLLLoss", "gaussian_nll_loss", "KLDivLoss", "CTCLoss",
            "ctc_loss"} <= names
    missing = [n for n in names if n not in flt.__all__]
    assert not missing, f"fastloss losses without a fastloss.torch form: {missing}"
    extra = [n for n in flt.__all__ if n not in names]
    assert not extra, f"fastloss.torch names that are not fastloss losses: {extra}"
    for name, kind in losses:
        obj = getattr(flt, name)
        if kind == "module":
            assert issubclass(obj, nn.Module) and obj.__name__ == name
            assert obj.__module__ == "fastloss.torch"
        else:
            assert callable(obj) and obj.__name__ == name
            fl_params = [p for p in inspect.signature(getattr(fl, name)).parameters
                         if p not in ("return_grad", "out")]
            assert list(inspect.signature(obj).parameters) == fl_params, name


def test_module_is_picklable_and_copyable():
    import pickle
    m = flt.HuberLoss(delta=0.5, reduction="sum")
    m2 = pickle.loads(pickle.dumps(m))
    m3 = copy.deepcopy(m)
    x, t = torch.randn(5), torch.randn(5)
    assert m(x, t).item() == m2(x, t).item() == m3(x, t).item()


def test_new_loss_needs_no_adapter_code(monkeypatch):
    """A loss added to fastloss (here a cubic loss written in NumPy, following
    fastloss's conventions) gets its module and function on import."""

    def cube_loss(input, target, scale=1.0, *, weight=None, reduction="mean", return_grad=False, out=None,
                  n_threads=None):
        x, t = np.asarray(input), np.asarray(target, dtype=np.asarray(input).dtype)
        d = x - t
        v, g = scale * d ** 3, 3 * scale * d ** 2
        if reduction == "mean":
            v, g = float(v.mean()), g / d.size
        elif reduction == "sum":
            v = float(v.sum())
        return (v, g) if return_grad else v

    class CubeLoss:
        def __init__(self, scale=1.0, reduction="mean", n_threads=None):
            self.scale, self.reduction = scale, reduction

        def __call__(self, input, target, weight=None):
            return cube_loss(input, target, self.scale, reduction=self.reduction)

        def value_and_grad(self, input, target, weight=None, out=None, loss_out=None):
            return cube_loss(input, target, self.scale, reduction=self.reduction, return_grad=True)

        def grad_hess(self, input, target, weight=None, out=None):
            raise NotImplementedError

    monkeypatch.setattr(fl, "cube_loss", cube_loss, raising=False)
    monkeypatch.setattr(fl, "CubeLoss", CubeLoss, raising=False)
    monkeypatch.setattr(fl, "__all__", list(fl.__all__) + ["cube_loss", "CubeLoss"])
    try:
        mod = importlib.reload(flt)
        assert "cube_loss" in mod.__all__ and "CubeLoss" in mod.__all__
        for reduction in ("mean", "sum", "none"):
            x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
            t = torch.randn(6, 2, dtype=torch.float64)
            for out in (mod.CubeLoss(scale=2.0, reduction=reduction)(x, t),
                        mod.cube_loss(x, t, 2.0, reduction=reduction)):
                ref = 2.0 * (x.detach() - t) ** 3
                ref = {"mean": ref.mean, "sum": ref.sum}.get(reduction, lambda: ref)()
                assert_close(out, ref, torch.float64, "cube value")
                x.grad = None
                out.sum().backward()
                g = 6.0 * (x.detach() - t) ** 2 / (x.numel() if reduction == "mean" else 1)
                assert_close(x.grad, g, torch.float64, "cube grad")
    finally:
        monkeypatch.undo()
        importlib.reload(flt)
    assert "cube_loss" not in flt.__all__

"""Sequence losses: connectionist temporal classification (CTC).

A function named as in ``torch.nn.functional`` and a class named as in
``torch.nn``, both over the one call path of ``fastloss._sequence_api``;
the recursion is in ``src/fastloss/_src/fl_ctc_math.h``.
"""
from __future__ import annotations

from typing import Optional

from . import _validate as V
from ._config import _threads
from ._sequence_api import _int_scalar, ctc

__all__ = ["ctc_loss", "CTCLoss"]


def _none_axes(options) -> tuple:
    """The gradient axes that reduction="none"'s per-sample loss lacks (for
    adapters that weight the gradient by an upstream per-sample factor):
    time and class, around the batch axis."""
    return (1, 2) if options.get("batch_first") else (0, 2)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, *, weight=None, from_logits=False, batch_first=False, return_grad=False,
             out=None, n_threads=None, check=False):
    """Connectionist temporal classification loss, as ``torch.nn.functional.ctc_loss``.

    For each sample, with ``y_t(k) = exp(log_probs[t, k])`` over its first
    ``T_n = input_lengths[n]`` time steps and its target ``l`` of
    ``S_n = target_lengths[n]`` labels, the loss is ``-log p(l | x)``,
    where ``p`` sums ``prod_t y_t(pi_t)`` over every alignment ``pi`` of
    length ``T_n`` that collapses to ``l`` (merge repeats, drop blanks).
    It is computed by the forward-backward recursion (Graves et al., 2006)
    in log space over the ``2 S_n + 1`` extended labels, in float64 for
    float32 data too.  ``"mean"`` divides each loss by its target length
    (at least 1) and averages over the batch, as PyTorch; ``"sum"`` adds
    them; ``"none"`` returns them.

    The gradient returned is the exact gradient of the returned value with
    respect to ``log_probs``: ``-sum_{s: l'_s = k} alpha_t(s) beta_t(s) / p``
    (the occupancy of class k at time t), zero for classes the target does
    not use and for ``t >= T_n``.  PyTorch's ``ctc_loss`` backward returns
    instead ``exp(log_probs) - occupancy``, the gradient with respect to
    *logits* that went through ``log_softmax`` (pytorch#52241); it is not
    the derivative of its value in ``log_probs``.  The two agree once
    chained through ``log_softmax``: its backward maps ``g`` to
    ``g - softmax * sum_k g``, and the occupancy sums to 1 at every t, so
    both give ``softmax - occupancy`` at the logits (``fastloss.torch``
    relies on this).  With ``from_logits=True`` the input is the logits
    themselves, the log_softmax over C is fused into the kernel, and the
    gradient is ``softmax - occupancy`` with respect to the logits (what
    optax and Keras take).

    Parameters
    ----------
    log_probs : array_like
        ``(T, N, C)`` log-probabilities (logits with ``from_logits``),
        ``(N, T, C)`` with ``batch_first=True``, or ``(T, C)`` for one
        unbatched sample.  A C-contiguous float32/float64 array is read in
        place, batch-first too.
    targets : array_like of int
        ``(N, S)`` padded (sample n uses its first ``target_lengths[n]``
        labels) or 1-D, the targets concatenated (exactly
        ``sum(target_lengths)`` labels, as PyTorch); ``(S,)`` for unbatched
        input.  int64 and int32 are read in place.  Every label used must
        be in ``[0, C)`` and differ from ``blank``.
    input_lengths, target_lengths : array_like of int, or sequence of int
        ``(N,)`` (``()`` or an int for unbatched input);
        ``0 <= input_lengths[n] <= T``, ``0 <= target_lengths[n] <= S``.
    blank : int
        The blank class, in ``[0, C)``.
    reduction : {"mean", "sum", "none"}
    weight : array_like of shape (N,), optional
        Per-sample weights (fastloss's; PyTorch has none): sample n's loss
        is multiplied by ``weight[n]`` (a sample of weight 0 contributes 0,
        even an infinite loss), and ``"mean"`` divides by ``sum(weight)``
        instead of N, as PyTorch's weighted means do.
    zero_infinity : bool
        Infinite losses (no alignment fits: ``T_n`` shorter than the target
        and its repeats) become 0.  Without it they are ``inf``.  Either way
        their gradient is 0 (PyTorch's is NaN without ``zero_infinity``).
    from_logits : bool
        ``log_probs`` holds logits: see above.
    batch_first : bool
        ``log_probs`` (and the gradient) are ``(N, T, C)``.
    return_grad : bool
        Also return the gradient, from the same call.
    out : ndarray, optional
        Buffer for the gradient (input's shape and dtype, C-contiguous);
        only with ``return_grad=True``.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Returns
    -------
    value : float, or ndarray of shape (N,) (``()`` unbatched) for reduction="none"
    grad : ndarray of log_probs' shape and dtype, with return_grad=True

    Raises
    ------
    ValueError
        For a target label outside ``[0, C)`` or equal to ``blank`` (naming
        the sample and position), a length out of its bounds (naming the
        sample), ``blank`` outside ``[0, C)``, or shapes that do not fit.
        Labels are checked before anything is written.
    TypeError
        For non-integer targets or lengths.

    Notes
    -----
    Threads share the samples; a batch smaller than the thread count runs
    each sample on two threads (the forward and backward halves at the
    same time), so N = 1 uses two cores.  The result is bit-identical for
    any thread count.  Memory: besides the gradient, each thread keeps one
    table of ``max(T_n) x (2 max(S_n) + 1)`` doubles (none for the value
    alone), no ``T x N x C`` temporary; beyond 32 MiB a thread it keeps
    every K-th row, ``K = ceil(sqrt(max(T_n)))``, and recomputes the rest
    (about a third more time, the same result to the bit).  NaN in a log-probability that a
    sample uses propagates to its loss; ``-inf`` on a class the target does
    not use gives a finite loss and gradient (PyTorch's gradient is NaN).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((6, 2, 4))                    # (T, N, C) logits
    >>> lp = z - np.log(np.exp(z).sum(-1, keepdims=True))     # log_softmax
    >>> targets = np.array([[1, 2], [3, 3]])
    >>> value, grad = fl.ctc_loss(lp, targets, [6, 5], [2, 2], return_grad=True)
    >>> round(value, 10)
    2.5972901296
    >>> bool(np.allclose(grad.sum(-1)[:5], -1 / (2 * 2)))      # occupancies sum to 1 per step
    True
    >>> v2, g2 = fl.ctc_loss(z, targets, [6, 5], [2, 2], from_logits=True, return_grad=True)
    >>> bool(np.isclose(v2, value)), bool(np.allclose(g2, grad - np.exp(lp) * grad.sum(-1, keepdims=True)))
    (True, True)
    """
    return ctc("ctc_loss", log_probs, targets, input_lengths, target_lengths, blank, reduction,
               zero_infinity, from_logits, batch_first, return_grad, out, n_threads, weight=weight, check=check)


ctc_loss._grad_args = ("log_probs",)
ctc_loss._class_axis = _none_axes
# split along its samples (axis 1 of (T, N, C) log_probs): _sequence_api.SamplesPlan
ctc_loss._chunk_path = "samples"


class CTCLoss:
    """Connectionist temporal classification loss, as ``torch.nn.CTCLoss``:
    the object form of :func:`ctc_loss`.

    ``CTCLoss(blank=0, reduction="mean", zero_infinity=False, *,
    from_logits=False, batch_first=False, n_threads=None)``.  Calling it
    gives the value; ``value_and_grad`` the value and the exact gradient
    with respect to ``log_probs`` (see :func:`ctc_loss` for how it relates
    to PyTorch's).  There is no ``grad_hess``: CTC offers no diagonal
    Hessian.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> lp = np.log(np.full((4, 3), 1 / 3))                  # unbatched (T, C)
    >>> loss = fl.CTCLoss(reduction="sum")
    >>> round(loss(lp, np.array([1, 2]), 4, 2), 10)           # 15 alignments of (1/3)^4: log(81/15)
    1.6863989536
    >>> value, grad = loss.value_and_grad(lp, np.array([1, 2]), 4, 2)
    >>> grad.shape
    (4, 3)
    """

    _grad_args = ("log_probs",)

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False, *,
                 from_logits: bool = False, batch_first: bool = False, n_threads: Optional[int] = None):
        op = type(self).__name__
        self.blank = _int_scalar(blank, "blank", op)
        if self.blank < 0:
            raise ValueError(f"{op}: blank must be >= 0, got {self.blank}")
        self.reduction = V.check_reduction(reduction, op, V.REDUCTIONS)
        self.zero_infinity = V.boolean(zero_infinity, "zero_infinity", op)
        self.from_logits = V.boolean(from_logits, "from_logits", op)
        self.batch_first = V.boolean(batch_first, "batch_first", op)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    _class_axis = staticmethod(_none_axes)

    def _run(self, log_probs, targets, input_lengths, target_lengths, weight, return_grad, out=None,
             loss_out=None, check=False):
        return ctc("CTCLoss", log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                   self.zero_infinity, self.from_logits, self.batch_first, return_grad, out, self.n_threads,
                   loss_out, weight, check)

    def __call__(self, log_probs, targets, input_lengths, target_lengths, weight=None, *, check=False):
        """The loss value: a float, or the per-sample losses for reduction="none";
        ``weight`` optional per-sample weights (see :func:`ctc_loss`)."""
        return self._run(log_probs, targets, input_lengths, target_lengths, weight, False, check=check)

    def value_and_grad(self, log_probs, targets, input_lengths, target_lengths, weight=None, out=None,
                       loss_out=None, *, check=False):
        """``(value, grad)`` from one call; ``out`` is an optional buffer for
        the gradient (log_probs' shape and dtype), ``loss_out`` one for the
        per-sample losses with reduction="none" (shape (N,), ``()``
        unbatched; log_probs' dtype)."""
        return self._run(log_probs, targets, input_lengths, target_lengths, weight, True, out, loss_out, check=check)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("blank", self.blank), ("reduction", self.reduction), ("zero_infinity", self.zero_infinity),
                ("from_logits", self.from_logits), ("batch_first", self.batch_first)]


# ------------------------------------------------------------------ fuzz examples

def _declare_examples():
    """One valid call of ctc_loss, for the fuzz harness (docs/reliability.md).

    Every label of ``targets`` is read (padded targets are full: every
    target_lengths[n] = S), so that a hostile label anywhere is an error;
    the lengths are integer operands that must stay within their bounds."""
    import numpy as np

    from . import _examples as X

    def pick(rng, options):
        return options[int(rng.integers(0, len(options)))]

    def gen(rng, dtype, size):
        C = int(rng.integers(2, 7)) if rng.random() < 0.9 else int(rng.integers(30, 80))
        blank = pick(rng, (0, 0, C - 1, int(rng.integers(0, C))))
        T = int(rng.integers(1, 9))
        unbatched = rng.random() < 0.15
        N = 1 if unbatched else (size if size < 40 else size // 8)
        batch_first = bool(rng.random() < 0.3)
        shape = (T, C) if unbatched else (N, T, C) if batch_first else (T, N, C)
        from_logits = bool(rng.random() < 0.4)
        z = X.values(rng, "normal", shape, np.float64)
        lp = z if from_logits else z - np.log(np.exp(z).sum(-1, keepdims=True))
        il = rng.integers(0, T + 1, N)
        padded = not unbatched and rng.random() < 0.5
        S = int(rng.integers(0, T + 1))
        tl = np.full(N, S) if padded else rng.integers(0, T + 1, N)
        others = np.array([k for k in range(C) if k != blank])
        n_lab = N * S if padded else int(tl.sum())
        t = others[rng.integers(0, len(others), n_lab)] if n_lab else np.zeros(0, np.int64)
        t = t.astype(pick(rng, (np.int64, np.int64, np.int32)))
        lengths_dtype = pick(rng, (np.int64, np.int32))
        args = {"log_probs": np.asarray(lp, dtype),
                "targets": t.reshape(N, S) if padded else t,
                "input_lengths": int(il[0]) if unbatched and rng.random() < 0.5 else il.astype(lengths_dtype),
                "target_lengths": int(tl[0]) if unbatched and rng.random() < 0.5 else tl.astype(lengths_dtype),
                "blank": blank, "reduction": pick(rng, ("mean", "sum", "none")),
                "zero_infinity": bool(rng.random() < 0.5), "from_logits": from_logits,
                "batch_first": batch_first}
        if rng.random() < 0.3:
            args["weight"] = X.values(rng, "positive", () if unbatched else (N,), dtype)
        return X.Example(args, labels={"targets": C}, lengths=("input_lengths", "target_lengths"))

    X.declare(gen, ctc_loss, CTCLoss)


_declare_examples()

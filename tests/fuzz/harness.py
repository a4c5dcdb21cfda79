"""The bad-input fuzz harness: every public loss, hostile variants of valid calls.

The losses are enumerated from ``fastloss.__all__`` and the example
generators they declare (``fastloss._examples``; a loss without one is a
failure of ``tests/test_fuzz.py``).  For each (loss, form, seed) a *job*
draws one valid call from the declaration and runs every hostile variant
derived from it:

* ``clean``: the call itself, in every mode (value, gradient, ``out=``,
  the class's ``__call__``/``value_and_grad``/``grad_hess``), the same bits
  on 1 and 2 threads on the forced parallel path;
* ``layout:<arg>:<kind>``: one operand non-contiguous, reversed (negative
  strides), Fortran-ordered, read-only, misaligned, stride-0, byte-swapped,
  or a list; the outcome must equal the call on a clean, aligned,
  C-contiguous copy of the same values (result bits, or error type and
  message), and the operand must not be modified;
* ``value:<arg>:<kind>``: NaN, +-inf, huge, subnormal or -0 in an operand;
* ``param:<name>:<value>``: hostile scalars (NaN, inf, 2**31, 2**70,
  10**400, -2**63, True, None, strings), ``reduction`` and ``n_threads``;
* ``labels:<arg>:<kind>``: out-of-range labels (an error naming the value;
  ``out=`` left untouched), labels of every integer dtype (the same result
  as int64), uint64 beyond int64, float labels;
* ``out:<kind>``: ``out=`` buffers that are valid (written in place, no
  byte outside touched) or not (misaligned, strided, Fortran, read-only,
  wrong dtype or shape, a list, overlapping the input, given without
  return_grad=True), and ``loss_out=`` likewise for the classes;
* form ``torch`` (when torch is installed): the ``fastloss.torch``
  function on tensors gives the fastloss function's value and gradient
  bits; strided, transposed and stride-0 tensors the same as contiguous
  ones; lists and sparse tensors a TypeError naming them.

Acceptable outcomes: the result above, or a ValueError/TypeError/IndexError
whose message names an argument.  Jobs run in a worker subprocess that
reports each variant before it starts, so a crash (segfault, abort) or a
hang is pinned to one variant; the worker is restarted and the job resumes
after it.  Every failure prints a reproducer:

    python tests/fuzz/harness.py --replay NAME FORM SEED VARIANT

Run it directly: ``python tests/fuzz/harness.py --seconds 60 [--workers 2]
[--only cross_entropy,MSELoss]``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import subprocess
import sys
import time
import traceback

import numpy as np

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
SIZES = (0, 1, 2, 3, 5, 8, 17, 40, 150)
ACCEPTED_ERRORS = (ValueError, TypeError, IndexError)
OPTION_NAMES = ("reduction", "n_threads", "return_grad", "out", "loss_out")


# ------------------------------------------------------------------ discovery

def losses():
    """[(name, form)] of every public loss with an example declaration:
    form "fn" (a function with return_grad), "plain" (a function without,
    e.g. cross_entropy_hvp) or "cls" (a class with value_and_grad)."""
    import fastloss as fl

    out = []
    for name in fl.__all__:
        obj = getattr(fl, name, None)
        if getattr(obj, "_examples", None) is None:
            continue
        if isinstance(obj, type):
            out.append((name, "cls"))
        else:
            out.append((name, "fn" if "return_grad" in inspect.signature(obj).parameters else "plain"))
    flt = _fastloss_torch()
    if flt is not None:
        out += [(n, "torch") for n, f in list(out) if f == "fn" and n in flt.__all__]
    return out


def _fastloss_torch():
    """fastloss.torch, or None without torch (its functions are a form of
    their own: tensors in, autograd's gradients out)."""
    if os.environ.get("FASTLOSS_FUZZ_NO_TORCH"):
        return None
    try:
        import fastloss.torch as flt
    except ImportError:
        return None
    return flt


def undeclared():
    """Public losses (functions with return_grad, classes with
    value_and_grad) that declare no examples."""
    import fastloss as fl

    missing = []
    for name in fl.__all__:
        obj = getattr(fl, name, None)
        if isinstance(obj, type):
            is_loss = hasattr(obj, "value_and_grad") or hasattr(obj, "grad_hess")
        elif callable(obj):
            try:  # a loss function returns gradients (diagnose/suggest take input but are not losses)
                is_loss = "return_grad" in inspect.signature(obj).parameters
            except (TypeError, ValueError):
                is_loss = False
        else:
            is_loss = False
        if is_loss and getattr(obj, "_examples", None) is None:
            missing.append(name)
    return missing


# ------------------------------------------------------------------ outcomes

class Failure(AssertionError):
    pass


def _grab(thunk):
    """("ok", result) or ("err", exception)."""
    try:
        return "ok", thunk()
    except ACCEPTED_ERRORS as exc:
        return "err", exc


def _flat(res):
    return list(res) if isinstance(res, tuple) else [res]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and \
            np.array_equal(np.signbit(a), np.signbit(b))
    if isinstance(a, float) and isinstance(b, float):
        return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
    return type(a) is type(b) and a == b


def _snap(res):
    """A result with its arrays copied (a later call may reuse a buffer)."""
    return [r.copy() if isinstance(r, np.ndarray) else r for r in _flat(res)]


def _same_in_dtype(tg, ex, args, name, y, dt, what, canonical):
    """The call with integer operand ``name`` as ``dt`` gives the outcome of
    the example's own call (skipped when the values do not fit ``dt``)."""
    info = np.iinfo(dt)
    if y.size and (y.min() < info.min or y.max() > info.max):
        return
    args[name] = y.astype(dt)
    for mode in tg.modes(args):
        oc = _grab(lambda: _snap(tg.call(ex.args, mode)))
        oh = _grab(lambda: _snap(tg.call(args, mode)))
        why = same_outcome(oh, oc)
        if why:
            raise Failure(f"{what} of dtype {dt} vs {canonical} ({mode}): {why}")


def same_outcome(o1, o2) -> str:
    """'' if two outcomes agree, else why not."""
    (k1, r1), (k2, r2) = o1, o2
    if k1 != k2:
        return f"one call gave {_show(o1)}, the other {_show(o2)}"
    if k1 == "err":
        if type(r1) is not type(r2) or str(r1) != str(r2):
            return f"different errors: {_show(o1)} vs {_show(o2)}"
        return ""
    if len(r1) != len(r2) or not all(_same(a, b) for a, b in zip(r1, r2)):
        return f"different results: {_brief(r1)} vs {_brief(r2)}"
    return ""


def _brief(res):
    return [f"array{r.shape}{r.dtype}={np.array2string(r.ravel()[:4], precision=17)}" if isinstance(r, np.ndarray)
            else repr(r) for r in res]


def _show(o):
    k, r = o
    return f"{type(r).__name__}: {r}" if k == "err" else f"result {_brief(r)}"


def names_an_argument(exc, names) -> bool:
    msg = str(exc)
    return any(n in msg for n in names) or "Target" in msg


# ------------------------------------------------------------------ layouts

def _strided(a):
    big = np.empty(a.shape[:-1] + (a.shape[-1] * 2,) if a.ndim else (2,), a.dtype)
    v = big[..., ::2] if a.ndim else big[:1].reshape(())
    v[...] = a
    return v


def _misaligned(a):
    if a.dtype.itemsize == 1:
        return None
    buf = np.zeros(a.nbytes + a.dtype.itemsize + 1, np.uint8)
    v = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
    if v.flags.aligned:  # NumPy calls an empty array aligned
        return None
    v[...] = a
    return v


def _reversed(a):
    if a.ndim == 0:
        return None
    return np.flip(np.ascontiguousarray(np.flip(a)))


def _fortran(a):
    return np.asfortranarray(a) if a.ndim >= 2 and sum(d > 1 for d in a.shape) >= 2 else None


def _readonly(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def _stride0(a):
    """A stride-0 view (broadcast of the first entry along the last axis)."""
    if a.ndim == 0 or a.shape[-1] < 2:
        return None
    return np.broadcast_to(a[..., :1], a.shape)


def _byteswapped(a):
    if a.dtype.itemsize == 1:
        return None
    return a.astype(a.dtype.newbyteorder())


def _as_list(a):
    return a.tolist() if a.size else None  # (an empty list loses the shape)


LAYOUTS = {"strided": _strided, "reversed": _reversed, "fortran": _fortran, "readonly": _readonly,
           "misaligned": _misaligned, "stride0": _stride0, "byteswapped": _byteswapped, "list": _as_list}


def clean_copy(a):
    """The aligned, C-contiguous, native-order array of the same values."""
    a = np.asarray(a)
    return np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=True)


# ------------------------------------------------------------------ calls

def _params(f):
    return inspect.signature(f).parameters


class Target:
    """One loss in one form and the ways to call it with an Example's args."""

    def __init__(self, name, form):
        import fastloss as fl

        self.name, self.form = name, form
        self.obj = getattr(fl, name)
        self.gen = self.obj._examples
        self.grad_args = tuple(getattr(self.obj, "_grad_args", ("input",)))
        self.n_grads = len(self.grad_args)
        if form == "torch":
            self.fn, self.obj = self.obj, getattr(_fastloss_torch(), name)

    def torch_call(self, args, layout=None, **extra):
        """The fastloss.torch form on tensors made from args (arrays as
        tensors, with one in a hostile layout); returns the value and the
        gradients autograd gives, as arrays."""
        import torch

        targs, leaves = {}, []
        for k, a in args.items():
            if isinstance(a, np.ndarray):
                t = torch.from_numpy(np.array(a, copy=True))
                if k in self.grad_args:
                    t.requires_grad_(True)
                    leaves.append(t)
                if layout is not None and layout[0] == k:
                    t = layout[1](t)
                targs[k] = t
            else:
                targs[k] = a
        res = self.obj(**targs, **extra)
        out = [res.detach().numpy().copy()]
        if leaves and res.requires_grad:
            res.backward(torch.ones_like(res))
            out += [t.grad.numpy().copy() for t in leaves]
        return out

    def modes(self, args):
        if self.form == "torch":
            return ["torch"]
        if self.form == "fn":
            return ["value", "grad"]
        if self.form == "plain":
            return ["plain"]
        return ["call", "vag"] + (["gh"] if hasattr(self.obj, "grad_hess") else [])

    def split(self, args):
        """A class's (constructor kwargs, call kwargs) from a function's args."""
        init = _params(self.obj.__init__)
        call = _params(self.obj.value_and_grad)
        ia, ca = {}, {}
        for k, v in args.items():
            if k in call and k not in ("out", "loss_out"):
                ca[k] = v
            elif k in init:
                ia[k] = v
            else:
                raise Failure(f"{self.name}: the example's argument {k!r} is neither a constructor nor a "
                              f"call argument of the class")
        return ia, ca

    def call(self, args, mode, **extra):
        """Run the loss once; returns the result (a tuple for several)."""
        if self.form == "torch":
            return tuple(self.torch_call(args, **extra))
        if self.form == "fn":
            return self.obj(**args, **({"return_grad": True} if mode == "grad" else {}), **extra)
        if self.form == "plain":
            return self.obj(**args, **extra)
        ia, ca = self.split(args)
        nt = extra.pop("n_threads", "absent")
        if nt != "absent":
            ia["n_threads"] = nt
        loss = self.obj(**ia)
        if mode == "call":
            return loss(**ca, **extra)
        if mode == "vag":
            return loss.value_and_grad(**ca, **extra)
        return loss.grad_hess(**ca, **extra)

    def arg_names(self, args):
        return set(args) | {"input", "target", "weight", "out", "loss_out", "hess_out", "n_threads",
                            "reduction"} | set(_params(self.obj.__init__ if self.form == "cls" else self.obj))


def _parallel(on: bool):
    """Force (or restore) the parallel path of every compiled driver."""
    mods = [m for n, m in sorted(sys.modules.items()) if n.startswith("fastloss._") and
            hasattr(m, "set_parallel_threshold")]
    olds = []
    for m in mods:
        olds.append((m, m.set_parallel_threshold(0)))
    return olds


def _restore(olds):
    for m, old in olds:
        m.set_parallel_threshold(old)


# ------------------------------------------------------------------ variants

def hostile_scalars():
    return [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, 2 ** 31, 2 ** 70, 10 ** 400,
            -10 ** 400, -2 ** 63, 2 ** 63, True, None, "1", np.float32("nan"), np.uint64(2 ** 64 - 1), [1.0]]


def variants(tg: Target, ex) -> list:
    """Every variant name of one example (deterministic given the example)."""
    args = ex.args
    if tg.form == "torch":
        v = ["clean", "torch:fastloss"]
        for k, a in args.items():
            if isinstance(a, np.ndarray):
                v += [f"torch:{k}:{lay}" for lay in TORCH_LAYOUTS]
        return v + [f"param:n_threads:{i}" for i in (0, 2, 3)]
    v = ["clean", "threads"]
    arrays = [k for k, a in args.items() if isinstance(a, np.ndarray)]
    for k in arrays:
        for lay in LAYOUTS:
            v.append(f"layout:{k}:{lay}")
        if args[k].dtype.kind == "f" and args[k].size:
            for kind in ("nan", "inf", "-inf", "huge", "subnormal", "-0"):
                v.append(f"value:{k}:{kind}")
    for k, a in args.items():
        if k == "reduction":
            v += [f"param:reduction:{i}" for i in range(4)]
        elif isinstance(a, (bool, np.bool_)):
            v += [f"param:{k}:{i}" for i in range(3)]
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            v += [f"param:{k}:{i}" for i in range(len(hostile_scalars()))]
    v += [f"param:n_threads:{i}" for i in range(len(BAD_THREADS))]
    for k in ex.labels:
        if args[k].size:
            v += [f"labels:{k}:bad{i}" for i in range(len(BAD_LABELS))]
            v += [f"labels:{k}:uint64big", f"labels:{k}:float"]
        v += [f"labels:{k}:{dt}" for dt in LABEL_DTYPES]
    for k in arrays:  # integer operands other than class labels: lengths, in-batch group ids
        if k not in ex.labels and args[k].dtype.kind in "iu":
            v += [f"ints:{k}:{dt}" for dt in LABEL_DTYPES + ["int64"]]
            if k in getattr(ex, "lengths", ()) and args[k].size:
                v += [f"ints:{k}:bad{i}" for i in range(len(BAD_LENGTHS))]
    if tg.form == "fn":
        v += [f"out:{k}" for k in OUT_KINDS] + ["out:valid", "out:no_return_grad", "out:overlap"]
    if tg.form == "cls":
        v += ["out:valid"]
        if "loss_out" in _params(tg.obj.value_and_grad):
            v += ["loss_out:valid", "loss_out:list", "loss_out:misaligned", "loss_out:reduction"]
        v += ["out:gh_valid"] if hasattr(tg.obj, "grad_hess") else []
    return v


def _t_strided(t):
    import torch

    if t.dim() == 0:
        return None
    big = torch.zeros(t.shape[:-1] + (t.shape[-1] * 2,), dtype=t.dtype)
    with torch.no_grad():
        big[..., ::2] = t
    return big[..., ::2] if not t.requires_grad else None


def _t_transposed(t):
    if t.dim() < 2 or t.requires_grad:
        return None
    return t.mT.contiguous().mT


def _t_stride0(t):
    if t.dim() == 0 or t.shape[-1] < 2 or t.requires_grad:
        return None
    return t[..., :1].expand(t.shape)


TORCH_LAYOUTS = {"strided": _t_strided, "transposed": _t_transposed, "stride0": _t_stride0,
                 # (0-d: a number; empty: the list loses the shape)
                 "list": lambda t: None if t.requires_grad or t.dim() == 0 or t.numel() == 0 else t.tolist(),
                 "sparse": lambda t: t.detach().to_sparse() if t.dim() else None}

BAD_THREADS = [0, -1, "max+1", 2 ** 31, 2 ** 70, 10 ** 6, 1.5, "2", True]
BAD_LABELS = [-1, "C", "C+1000", 2 ** 31, -2 ** 31 - 1, 2 ** 63 - 1, -2 ** 63]
BAD_LENGTHS = [-1, 2 ** 31, 2 ** 63 - 1, -2 ** 63, "uint64big"]
LABEL_DTYPES = ["int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64"]
OUT_KINDS = ["misaligned", "strided", "fortran", "readonly", "wrong_dtype", "wrong_shape", "list"]


def _outs_like(res_grads, make):
    bufs = [make(g) for g in res_grads]
    return bufs[0] if len(bufs) == 1 else tuple(bufs)


def _bad_out(g, kind):
    if kind == "misaligned":
        return _misaligned(np.zeros_like(g))
    if kind == "strided":
        b = _strided(np.zeros_like(g)) if g.ndim else None
        return None if b is None or b.flags.c_contiguous else b  # (one element: still contiguous)
    if kind == "fortran":
        b = _fortran(np.zeros_like(g))
        return None if b is None or b.flags.c_contiguous else b  # (empty: also C-contiguous)
    if kind == "readonly":
        return _readonly(np.zeros_like(g))
    if kind == "wrong_dtype":
        return np.zeros(g.shape, F32 if g.dtype == F64 else F64)
    if kind == "wrong_shape":
        return np.zeros((g.size + 1,), g.dtype)
    if kind == "list":
        return np.zeros_like(g).tolist()
    raise KeyError(kind)


def _guarded(g):
    """An out buffer like g inside a larger one: (buffer, check_guard)."""
    pad = 16
    big = np.full(g.size + 2 * pad, 12345.0, g.dtype)
    buf = big[pad:pad + g.size].reshape(g.shape)

    def untouched():
        return bool(np.all(big[:pad] == 12345.0) and np.all(big[pad + g.size:] == 12345.0))

    return buf, untouched


def run_variant(tg: Target, ex, variant: str):
    """Run one variant; raise Failure with the reason if it misbehaves."""
    import fastloss as fl
    from fastloss._config import MAX_THREADS

    args = dict(ex.args)
    names = tg.arg_names(args)
    kind, _, rest = variant.partition(":")

    def expect_ok_or_named(outcome, extra_names=()):
        k, r = outcome
        if k == "err" and not names_an_argument(r, set(names) | set(extra_names)):
            raise Failure(f"the error names no argument: {type(r).__name__}: {r}")

    def both(hostile_args, mode, **kw):
        """Outcome of the hostile call and of the clean one, and the check
        that the hostile operands were not modified."""
        before = {k: (np.array(a, copy=True) if isinstance(a, np.ndarray) else None) for k, a in hostile_args.items()}
        oh = _grab(lambda: _snap(tg.call(hostile_args, mode, **kw)))
        for k, a in hostile_args.items():
            if before[k] is not None and not np.array_equal(before[k], a, equal_nan=True):
                raise Failure(f"the call modified its argument {k}")
        return oh

    if kind == "clean":
        for mode in tg.modes(args):
            o = _grab(lambda: _snap(tg.call(args, mode)))
            if o[0] == "err":
                raise Failure(f"the declared example is not a valid call ({mode}): {_show(o)}")
        return

    if kind == "threads":
        olds = _parallel(True)
        try:
            for mode in tg.modes(args):
                o1 = _grab(lambda: _snap(tg.call(args, mode, n_threads=1)))
                for nt in (2, 3, MAX_THREADS):
                    o2 = _grab(lambda: _snap(tg.call(args, mode, n_threads=nt)))
                    why = same_outcome(o1, o2)
                    if why:
                        raise Failure(f"n_threads=1 vs {nt} on the parallel path ({mode}): {why}")
        finally:
            _restore(olds)
        return

    if kind == "torch":
        sub, _, lay = rest.partition(":")
        if sub == "fastloss":  # the same bits as the fastloss function on the same arrays
            import torch

            o_t = _grab(lambda: tg.torch_call(args))
            o_f = _grab(lambda: _snap(tg.fn(**args, return_grad=True)))
            if o_t[0] == "ok" and o_f[0] == "ok":
                x = args[tg.grad_args[0]]
                o_f = ("ok", [np.asarray(o_f[1][0], dtype=x.dtype)] + o_f[1][1:])
                if not isinstance(o_f[1][0], np.ndarray) or o_f[1][0].shape != o_t[1][0].shape:
                    o_f[1][0] = np.asarray(o_f[1][0]).reshape(o_t[1][0].shape)
            if o_t[0] == "ok" and o_f[0] == "ok" and len(o_t[1]) == len(o_f[1]) > 2:
                # the gradient of a broadcast operand (var) is summed back by
                # torch in its own order: equal to rounding, not in bits
                for a, b in zip(o_t[1][2:], o_f[1][2:]):
                    tol = 1e-5 if a.dtype == F32 else 1e-12
                    scale = float(np.max(np.abs(b), initial=0.0))
                    if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True):
                        raise Failure(f"fastloss.torch vs fastloss: gradient {_brief([a])} vs {_brief([b])}")
                o_t, o_f = ("ok", o_t[1][:2]), ("ok", o_f[1][:2])
            why = same_outcome(o_t, o_f)
            if why:
                raise Failure(f"fastloss.torch vs fastloss: {why}")
            return
        name = sub
        conv = TORCH_LAYOUTS[lay]
        import torch

        probe = torch.from_numpy(np.array(args[name], copy=True))
        if name in tg.grad_args:
            probe.requires_grad_(True)
        if conv(probe) is None:
            return
        oc = _grab(lambda: tg.torch_call(args))
        oh = _grab(lambda: tg.torch_call(args, layout=(name, conv)))
        if lay == "sparse" or (lay == "list" and name in ("input", "target") + tg.grad_args):
            if oh[0] != "err" or not isinstance(oh[1], TypeError) or name not in str(oh[1]):
                raise Failure(f"fastloss.torch: {name} as {lay} gave {_show(oh)}, not a TypeError naming it")
            return
        if lay == "stride0":  # the values changed: compare with the same values laid out plainly
            a = np.broadcast_to(args[name][..., :1], args[name].shape).copy()
            oc = _grab(lambda: tg.torch_call(dict(args, **{name: a})))
        why = same_outcome(oh, oc)
        if why:
            raise Failure(f"fastloss.torch: {name} {lay} vs contiguous: {why}")
        return

    if kind == "layout":
        name, lay = rest.split(":")
        h = LAYOUTS[lay](args[name])
        if h is None:
            return
        cargs = dict(args)
        cargs[name] = clean_copy(h)
        hargs = dict(args)
        hargs[name] = h
        for mode in tg.modes(args):
            oc = _grab(lambda: _snap(tg.call(cargs, mode)))
            oh = both(hargs, mode)
            why = same_outcome(oh, oc)
            if why:
                raise Failure(f"{name} {lay} vs a clean copy ({mode}): {why}")
        return

    if kind == "value":
        name, what = rest.split(":")
        a = np.array(args[name], copy=True)
        huge = np.finfo(a.dtype).max if a.dtype.kind == "f" else 1e308
        tiny = np.finfo(a.dtype).smallest_subnormal if a.dtype.kind == "f" else 5e-324
        val = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": huge, "subnormal": tiny, "-0": -0.0}[what]
        idx = int(np.random.default_rng(len(variant)).integers(0, a.size))
        a.reshape(-1)[idx] = val
        args[name] = a
        for mode in tg.modes(args):
            o1 = _grab(lambda: _snap(tg.call(args, mode)))
            expect_ok_or_named(o1)
            o2 = _grab(lambda: _snap(tg.call(args, mode)))
            why = same_outcome(o1, o2)
            if why:
                raise Failure(f"not deterministic with {what} in {name}: {why}")
        return

    if kind == "param":
        name, i = rest.split(":")
        i = int(i)
        extra = {}
        if name == "n_threads":
            bad = BAD_THREADS[i]
            extra["n_threads"] = MAX_THREADS + 1 if bad == "max+1" else bad
        elif name == "reduction":
            args["reduction"] = ["MEAN", None, 1, ""][i]
        elif isinstance(args[name], (bool, np.bool_)):
            args[name] = [1, "yes", None][i]
        else:
            args[name] = hostile_scalars()[i]
        for mode in tg.modes(args):
            o = _grab(lambda: _snap(tg.call(args, mode, **extra)))
            if name in ("n_threads", "reduction"):
                if o[0] != "err" or name not in str(o[1]):
                    raise Failure(f"{name}={extra.get(name, args.get(name))!r} ({mode}) gave {_show(o)}, "
                                  f"not an error naming {name}")
            elif o[0] == "err" and name not in str(o[1]) and not str(o[1]).partition(": ")[2].startswith("Target "):
                # (a label error is fine: another ignore_index un-ignores labels)
                raise Failure(f"{name}={args[name]!r} ({mode}): the error does not name {name}: {_show(o)}")
        return

    if kind == "labels":
        name, what = rest.split(":")
        y = args[name]
        C = ex.labels[name]
        ign = args.get("ignore_index")
        if what.startswith("bad"):
            bad = BAD_LABELS[int(what[3:])]
            bad = {"C": C, "C+1000": C + 1000}.get(bad, bad)
            if bad == ign:
                return
            y = y.astype(np.int64)  # (a declared int32 or uint8 array cannot hold every bad label)
            y.reshape(-1)[int(np.random.default_rng(len(variant)).integers(0, y.size))] = bad
            args[name] = y
            for mode in tg.modes(args):
                extra, guard = {}, None
                if tg.form == "fn" and mode == "grad":
                    g0 = _flat(tg.call(ex.args, "grad"))[1:]
                    if tg.n_grads == 1:
                        buf = np.full_like(g0[0], 7.0)
                        extra["out"] = buf
                        guard = buf.copy()
                o = _grab(lambda: _snap(tg.call(args, mode, **extra)))
                if o[0] != "err" or not isinstance(o[1], ValueError) or str(bad) not in str(o[1]):
                    raise Failure(f"label {bad} ({mode}) gave {_show(o)}, not a ValueError naming it")
                if guard is not None and not np.array_equal(extra["out"], guard):
                    raise Failure(f"label {bad}: out= was written before the error")
            return
        if what == "uint64big":
            if y.size == 0 or (y < 0).any():
                return
            y = y.astype(np.uint64)
            y.reshape(-1)[-1] = 2 ** 64 - 3
            args[name] = y
            for mode in tg.modes(args):
                o = _grab(lambda: _snap(tg.call(args, mode)))
                if o[0] != "err" or str(2 ** 64 - 3) not in str(o[1]):
                    raise Failure(f"uint64 label 2**64-3 ({mode}) gave {_show(o)}, not an error naming it")
            return
        if what == "float":
            args[name] = y.astype(np.float64)
            for mode in tg.modes(args):
                o = _grab(lambda: _snap(tg.call(args, mode)))
                if o[0] == "ok":
                    continue  # e.g. a float target that is accepted as probabilities
                expect_ok_or_named(o)
            return
        _same_in_dtype(tg, ex, args, name, y, np.dtype(what), "labels", "int64")
        return

    if kind == "ints":
        name, what = rest.split(":")
        y = args[name]
        if what.startswith("bad"):
            bad = BAD_LENGTHS[int(what[3:])]
            y = y.astype(np.uint64) if bad == "uint64big" else y.astype(np.int64)
            bad = 2 ** 64 - 3 if bad == "uint64big" else bad
            if bad == 2 ** 64 - 3 and (args[name] < 0).any():
                return
            y.reshape(-1)[int(np.random.default_rng(len(variant)).integers(0, y.size))] = bad
            args[name] = y
            for mode in tg.modes(args):
                extra = {}
                if tg.form == "fn" and mode == "grad" and tg.n_grads == 1:
                    g0 = _flat(tg.call(ex.args, "grad"))[1]
                    extra["out"] = np.full_like(g0, 7.0)
                o = _grab(lambda: _snap(tg.call(args, mode, **extra)))
                if o[0] != "err" or not isinstance(o[1], ValueError) or name not in str(o[1]) \
                        or str(bad) not in str(o[1]):
                    raise Failure(f"{name} holding {bad} ({mode}) gave {_show(o)}, not a ValueError naming "
                                  f"{name} and the value")
                if "out" in extra and not np.all(extra["out"] == 7.0):
                    raise Failure(f"{name} holding {bad}: out= was written before the error")
            return
        _same_in_dtype(tg, ex, args, name, y, np.dtype(what), name, ex.args[name].dtype)
        return

    if kind == "out" and tg.form == "fn":
        ref = _grab(lambda: _snap(tg.call(args, "grad")))
        if ref[0] == "err":
            return
        grads = ref[1][1:]
        if rest == "valid":
            pairs = [_guarded(g) for g in grads]
            out = pairs[0][0] if len(pairs) == 1 else tuple(b for b, _ in pairs)
            o = _grab(lambda: tg.call(args, "grad", out=out))
            if o[0] == "err" and len(pairs) > 1 and "out" in str(o[1]):
                # a buffer for a broadcast operand's gradient (var) may be
                # refused: None for the gradients not of the input's shape
                shape = grads[0].shape
                out = tuple(b if g.shape == shape else None for (b, _), g in zip(pairs, grads))
                pairs = [p if g.shape == shape else (None, lambda: True) for p, g in zip(pairs, grads)]
                o = _grab(lambda: tg.call(args, "grad", out=out))
            if o[0] == "err":
                raise Failure(f"a valid out= was refused: {_show(o)}")
            res = _flat(o[1])
            for (b, untouched), g in zip(pairs, res[1:]):
                if b is not None and g.size and not np.shares_memory(g, b):
                    raise Failure("the gradient returned is not the out= buffer")
                if not untouched():
                    raise Failure("a write outside the out= buffer")
            why = same_outcome(("ok", _snap(tuple(res))), ref)
            if why:
                raise Failure(f"out= vs fresh outputs: {why}")
            return
        if rest == "no_return_grad":
            o = _grab(lambda: tg.call(args, "value", out=_outs_like(grads, np.zeros_like)))
            if o[0] != "err" or "out" not in str(o[1]):
                raise Failure(f"out= without return_grad=True gave {_show(o)}, not an error naming out")
            return
        if rest == "overlap":
            x = args.get(tg.grad_args[0])
            if not (isinstance(x, np.ndarray) and x.dtype == grads[0].dtype and x.shape == grads[0].shape
                    and x.size):
                return
            first = tg.grad_args[0]
            args[first] = x.copy()
            out = args[first] if len(grads) == 1 else (args[first],) + tuple(np.zeros_like(g) for g in grads[1:])
            o = _grab(lambda: tg.call(args, "grad", out=out))
            if o[0] != "err" or "out" not in str(o[1]):
                raise Failure(f"out= overlapping input gave {_show(o)}, not an error naming out")
            return
        for slot in range(len(grads)):
            bufs = [np.zeros_like(g) for g in grads]
            b = _bad_out(grads[slot], rest)
            if b is None:
                continue
            bufs[slot] = b
            out = bufs[0] if len(bufs) == 1 else tuple(bufs)
            o = _grab(lambda: tg.call(args, "grad", out=out))
            if o[0] != "err" or "out" not in str(o[1]):
                raise Failure(f"out= {rest} (slot {slot}) gave {_show(o)}, not an error naming out")
        return

    if kind in ("out", "loss_out") and tg.form == "cls":
        if kind == "out":
            mode = "vag" if rest == "valid" else "gh"
            ref = _grab(lambda: _snap(tg.call(args, mode)))
            if ref[0] == "err":
                return
            grads = ref[1][1:] if mode == "vag" else ref[1]
            pairs = [_guarded(g) for g in grads]
            if mode == "vag":
                out = pairs[0][0] if len(pairs) == 1 else tuple(b for b, _ in pairs)
            else:
                out = (pairs[0][0], pairs[1][0])
            o = _grab(lambda: tg.call(args, mode, out=out))
            if mode == "vag" and o[0] == "err" and len(pairs) > 1 and "out" in str(o[1]):
                # as for the functions: a buffer for a broadcast operand's
                # gradient (var) may be refused; None for those not of the input's shape
                shape = grads[0].shape
                out = tuple(b if g.shape == shape else None for (b, _), g in zip(pairs, grads))
                pairs = [p if g.shape == shape else (None, lambda: True) for p, g in zip(pairs, grads)]
                o = _grab(lambda: tg.call(args, mode, out=out))
            if o[0] == "err":
                raise Failure(f"a valid out= was refused ({mode}): {_show(o)}")
            if any(not u() for _, u in pairs):
                raise Failure(f"a write outside the out= buffer ({mode})")
            res = _flat(o[1])[1:] if mode == "vag" else _flat(o[1])
            if any(b is not None and g.size and not np.shares_memory(g, b) for (b, _), g in zip(pairs, res)):
                raise Failure(f"a gradient returned is not its out= buffer ({mode})")
            why = same_outcome(("ok", _snap(o[1])), ref)
            if why:
                raise Failure(f"out= vs fresh outputs ({mode}): {why}")
            return
        # loss_out
        if rest == "reduction":
            if args.get("reduction", "mean") == "none":
                args["reduction"] = "sum"
            ref = _grab(lambda: _snap(tg.call(args, "vag")))
            if ref[0] == "err":
                return
            o = _grab(lambda: tg.call(args, "vag", loss_out=np.zeros(3)))
            if o[0] != "err" or "loss_out" not in str(o[1]):
                raise Failure(f"loss_out= with reduction={args['reduction']!r} gave {_show(o)}, not an error "
                              f"naming loss_out")
            return
        args["reduction"] = "none"
        ref = _grab(lambda: _snap(tg.call(args, "vag")))
        if ref[0] == "err":
            return
        lo = ref[1][0]
        if not isinstance(lo, np.ndarray):
            return
        if rest == "valid":
            buf, untouched = _guarded(lo)
            o = _grab(lambda: tg.call(args, "vag", loss_out=buf))
            if o[0] == "err":
                raise Failure(f"a valid loss_out= was refused: {_show(o)}")
            if not untouched() or (buf.size and not np.shares_memory(_flat(o[1])[0], buf)):
                raise Failure("loss_out= not written in place, or written outside")
            why = same_outcome(("ok", _snap(o[1])), ref)
            if why:
                raise Failure(f"loss_out= vs fresh outputs: {why}")
            return
        bad = lo.tolist() if rest == "list" else _misaligned(np.zeros_like(lo))
        if bad is None:
            return
        o = _grab(lambda: tg.call(args, "vag", loss_out=bad))
        if o[0] != "err" or "loss_out" not in str(o[1]):
            raise Failure(f"loss_out= {rest} gave {_show(o)}, not an error naming loss_out")
        return

    raise Failure(f"unknown variant {variant!r}")


def example(name, form, seed):
    tg = Target(name, form)
    rng = np.random.default_rng(seed)
    dtype = (F64, F32)[seed % 2]
    size = SIZES[int(rng.integers(0, len(SIZES)))]
    return tg, tg.gen(rng, dtype, size)


def describe(ex) -> str:
    parts = []
    for k, v in ex.args.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{k}=array{v.shape}:{v.dtype}")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


# ------------------------------------------------------------------ worker

def _emit(line):
    sys.__stdout__.write("@@" + line + "\n")
    sys.__stdout__.flush()


def worker():
    """Read jobs (JSON lines) on stdin; report BEGIN <variant> before each
    variant and DONE <json> after each job."""
    import warnings

    warnings.simplefilter("ignore")
    for line in sys.stdin:
        job = json.loads(line)
        fails, count = [], 0
        try:
            tg, ex = example(job["name"], job["form"], job["seed"])
            vs = variants(tg, ex)
        except Exception:
            fails.append({"variant": "(generate)", "msg": traceback.format_exc(limit=3)})
            vs = []
        after = job.get("after")
        skipping = after is not None
        for v in vs:
            if skipping:
                skipping = v != after
                continue
            _emit("BEGIN " + v)
            count += 1
            if os.environ.get("FASTLOSS_FUZZ_SELFTEST_CRASH") == f"{job['name']}:{v}":
                os.abort()  # tests/test_fuzz.py: a crash must be pinned to this variant
            try:
                run_variant(tg, ex, v)
            except Failure as exc:
                fails.append({"variant": v, "msg": str(exc)})
            except Exception as exc:  # an exception type the policy does not allow
                fails.append({"variant": v, "msg": f"unexpected {type(exc).__name__}: {exc}\n"
                                                   + traceback.format_exc(limit=4)})
        _emit("DONE " + json.dumps({"fails": fails, "count": count}))


class _Worker:
    """A worker subprocess; a thread moves its stdout lines to a queue (so a
    hang is seen as a timeout), its stderr goes to a temporary file."""

    def __init__(self):
        import queue
        import tempfile
        import threading

        env = dict(os.environ)
        env.setdefault("PYTHONFAULTHANDLER", "1")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.err, text=True, env=env, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr_tail(self):
        self.err.seek(0)
        return self.err.read()[-3000:]

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def run_job(w, job, timeout):
    """Send one job; returns (fails, count, crash, stderr) with crash None or
    (the variant running when the worker died or hung, why)."""
    import queue

    w.p.stdin.write(json.dumps(job) + "\n")
    w.p.stdin.flush()
    last, deadline = None, time.monotonic() + timeout
    while True:
        try:
            line = w.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            w.stop()
            return [], 0, (last, "hang: no progress in %.0f s" % timeout), w.stderr_tail()
        if line is None:
            w.p.wait()
            return [], 0, (last, f"worker died (exit status {w.p.returncode})"), w.stderr_tail()
        if not line.startswith("@@"):
            continue
        tag, _, payload = line[2:].rstrip("\n").partition(" ")
        if tag == "BEGIN":
            last = payload
            deadline = time.monotonic() + timeout
        elif tag == "DONE":
            d = json.loads(payload)
            return d["fails"], d["count"], None, ""


def fuzz(seconds=20.0, workers=2, only=None, seed0=0, job_timeout=120.0, log=print):
    """Run jobs round-robin over every declared loss (seed0, seed0+1, ...)
    for about ``seconds`` (every loss gets at least one job); returns the
    list of failures, each a dict with a reproducer."""
    targets = [t for t in losses() if only is None or t[0] in only]
    queue = [(n, f, seed0) for n, f in targets]
    seed = seed0
    failures, n_variants, n_jobs = [], 0, 0
    start = time.monotonic()
    pool = [_Worker() for _ in range(max(1, workers))]
    busy = {}

    def next_job():
        nonlocal seed
        if queue:
            return queue.pop(0)
        if time.monotonic() - start > seconds:
            return None
        seed += 1
        queue.extend((n, f, seed) for n, f in targets)
        return queue.pop(0)

    import threading

    lock = threading.Lock()

    def drive(i):
        nonlocal n_variants, n_jobs
        while True:
            with lock:
                j = next_job()
            if j is None:
                return
            name, form, s = j
            job = {"name": name, "form": form, "seed": s}
            while True:
                fails, count, crash, err = run_job(pool[i], job, job_timeout)
                with lock:
                    n_variants += count
                    for f in fails:
                        failures.append(dict(f, name=name, form=form, seed=s))
                    if crash is None:
                        n_jobs += 1
                        break
                    variant, why = crash
                    failures.append({"name": name, "form": form, "seed": s, "variant": variant or "(generate)",
                                     "msg": f"CRASH: {why}\n{err}"})
                pool[i].stop()
                pool[i] = _Worker()
                if variant is None:
                    break
                job = dict(job, after=variant)

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(pool))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in pool:
        w.p.stdin.close()
        w.stop()
    log(f"fuzz: {n_jobs} jobs, {n_variants} variants over {len(targets)} losses (seeds {seed0}..{seed}) "
        f"in {time.monotonic() - start:.1f} s, {len(failures)} failures")
    for f in failures:
        log(report(f))
    return failures


def report(f) -> str:
    return (f"FAIL {f['name']} ({f['form']}, seed {f['seed']}) {f['variant']}: {f['msg']}\n"
            f"  reproduce: python tests/fuzz/harness.py --replay {f['name']} {f['form']} {f['seed']} "
            f"'{f['variant']}'")


def replay(name, form, seed, variant):
    tg, ex = example(name, form, int(seed))
    print(f"{name} ({form}), seed {seed}: {describe(ex)}")
    print(f"variants: {len(variants(tg, ex))}; running {variant}")
    run_variant(tg, ex, variant)
    print("passed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--replay", nargs=4, metavar=("NAME", "FORM", "SEED", "VARIANT"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated loss names")
    a = ap.parse_args(argv)
    if a.worker:
        worker()
        return 0
    if a.replay:
        replay(*a.replay)
        return 0
    only = set(a.only.split(",")) if a.only else None
    return 1 if fuzz(a.seconds, a.workers, only, a.seed) else 0


if __name__ == "__main__":
    sys.exit(main())

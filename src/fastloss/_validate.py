"""Argument checking shared by every loss wrapper.

Dtype policy (as scikit-image's): float32 and float64 arrays are used as
they are; float16 becomes float32; integer and bool become float64;
complex, object, string and datetime arrays are refused with a TypeError.
The ``input`` fixes the working dtype; ``target``, ``weight`` and the other
operands are converted to it (one copy, only if their dtype differs).  An aligned
C-contiguous array of the working dtype is never copied; any other layout
(strided, Fortran, negative or zero strides, byte-swapped, or misaligned:
``np.frombuffer(buf, dtype, offset=1)``, whose loads are undefined
behaviour in C) is copied once.  An output buffer (``out=``,
``hess_out=``, ``loss_out=``) is never copied: one that is not an aligned,
C-contiguous, writeable ndarray of the right dtype and shape is an error.
Messages follow PyTorch: the operation, then what was expected, then what
was received.
"""
from __future__ import annotations

import numpy as np

from ._chunks import index_offset
from ._pointwise import overlaps

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

REDUCTIONS = ("mean", "sum", "none")


def _float_dtype(dt: np.dtype, name: str, op: str) -> np.dtype:
    k = dt.kind
    if k == "f":
        if dt.itemsize <= 4:
            return F32
        return F64
    if k in "biu":
        return F64
    raise TypeError(
        f"{op}: {name} must be a real (float, integer or bool) array, got dtype {dt}"
    )


def not_array_like(a, name: str, op: str) -> TypeError:
    """The error for a value NumPy cannot take as an array (ragged lists and
    the like; a tensor that requires grad says where it belongs)."""
    if getattr(a, "requires_grad", False) and type(a).__module__.startswith("torch"):
        return TypeError(
            f"{op}: {name} is a torch.Tensor that requires grad; fastloss's NumPy API takes arrays and gives "
            f"no autograd: use fastloss.torch.{op} (the same loss, differentiable), or pass {name}.detach()")
    return TypeError(f"{op}: {name} must be array-like (a regular, non-ragged nesting of numbers), "
                     f"got {type(a).__name__}")


def asarray(a, name: str, op: str) -> np.ndarray:
    """np.asarray(a), with an error that names the argument."""
    if type(a) is np.ndarray:
        return a
    try:
        return np.asarray(a)
    except Exception as exc:
        raise not_array_like(a, name, op) from exc


def contiguous(a, dtype) -> np.ndarray:
    """``a`` as an aligned, C-contiguous array of ``dtype``: ``a`` itself if
    it is one, else one copy.  (``np.asarray`` and ``np.ascontiguousarray``
    return a misaligned array as it is; the kernels must not see one.)"""
    a = np.asarray(a, dtype=dtype, order="C")  # (ascontiguousarray would make 0-d 1-d)
    if not a.flags.aligned:
        a = a.copy()
    return a


def behaved(a: np.ndarray) -> bool:
    """Whether the kernels can read ``a`` in place: C-contiguous and aligned."""
    f = a.flags
    return f.c_contiguous and f.aligned


def as_input(a, name: str, op: str) -> np.ndarray:
    """``a`` as an aligned C-contiguous float32 or float64 array (the working dtype)."""
    if type(a) is np.ndarray:
        dt = a.dtype
        if (dt is F32 or dt is F64) and behaved(a):
            return a
    else:
        a = asarray(a, name, op)
    dt = _float_dtype(a.dtype, name, op)
    return contiguous(a, dt)


def as_operand(a, name: str, op: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """``a`` as an aligned C-contiguous array of ``dtype`` and exactly ``shape``."""
    if type(a) is np.ndarray:
        if a.dtype is dtype and a.shape == shape and behaved(a):
            return a
    else:
        a = asarray(a, name, op)
    _float_dtype(a.dtype, name, op)
    if a.shape != shape:
        raise ValueError(
            f"{op}: {name} must have the same shape as input, "
            f"got input: {shape} and {name}: {a.shape}"
        )
    return contiguous(a, dtype)


def as_broadcast(a, name: str, op: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """``a`` broadcast to ``shape`` (one copy if its shape differs)."""
    if type(a) is np.ndarray and a.dtype is dtype and a.shape == shape and behaved(a):
        return a
    a = asarray(a, name, op)
    _float_dtype(a.dtype, name, op)
    if a.shape != shape:
        try:
            a = np.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(
                f"{op}: {name} of shape {a.shape} cannot be broadcast to the input's shape {shape}"
            ) from None
    return contiguous(a, dtype)


def check_out(buf, name: str, op: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """Check a caller's output buffer: ndarray, dtype, shape, C order,
    aligned, writeable.  A buffer is never copied, so a misaligned one is
    refused (the kernels' stores to it would be undefined behaviour)."""
    if type(buf) is not np.ndarray:
        raise ValueError(f"{op}: {name} must be a numpy.ndarray, got {type(buf).__name__}")
    if buf.dtype is not dtype and buf.dtype != dtype:
        raise ValueError(f"{op}: {name} must have dtype {dtype} (the input's), got {buf.dtype}")
    if buf.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} (the input's), got {buf.shape}")
    if not buf.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous")
    if not buf.flags.aligned:
        raise ValueError(
            f"{op}: {name} must be aligned to its dtype ({dtype.alignment} bytes), got a misaligned array "
            f"(e.g. from np.frombuffer with an offset); pass an np.empty buffer")
    if not buf.flags.writeable:
        raise ValueError(f"{op}: {name} must be writeable, got a read-only array")
    return buf


def check_no_overlap(buf, name: str, op: str, *arrays) -> None:
    """``buf`` must not share memory with any of ``arrays`` (all C-contiguous)."""
    for a in arrays:
        if a is not None and overlaps(buf, a):
            raise ValueError(f"{op}: {name} must not share memory with the inputs or the other outputs")


def check_reduction(reduction, op: str, allowed=REDUCTIONS) -> str:
    if reduction in allowed and type(reduction) is str:
        return reduction
    raise ValueError(
        f"{op}: reduction must be one of {', '.join(repr(r) for r in allowed)}, got {reduction!r}"
    )


def real(value, name: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"):
            raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float's range (10**400)
        raise ValueError(f"{op}: {name} must be a real number within float64's range, "
                         f"got an integer of {int(value).bit_length()} bits") from None
    if v != v:
        raise ValueError(f"{op}: {name} must not be NaN")
    return v


def positive(value, name: str, op: str) -> float:
    v = real(value, name, op)
    if not v > 0:
        raise ValueError(f"{op}: {name} must be > 0, got {value!r}")
    return v


def nonneg(value, name: str, op: str) -> float:
    v = real(value, name, op)
    if not v >= 0:
        raise ValueError(f"{op}: {name} must be >= 0, got {value!r}")
    return v


def boolean(value, name: str, op: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{op}: {name} must be True or False, got {value!r}")


def first_index(mask: np.ndarray, shape: tuple):
    """The multi-index of the first true element of a flat mask."""
    i = int(np.flatnonzero(mask)[0])
    return np.unravel_index(i, shape) if shape else ()


def fmt_index(name: str, idx) -> str:
    """``name[i, j, ...]``; inside a chunk of a larger array (fastloss.dask)
    the first index is counted from the start of the whole array."""
    if not len(idx):
        return name
    off = index_offset()
    return f"{name}[{', '.join(str(int(i) + (off if k == 0 else 0)) for k, i in enumerate(idx))}]"


def legacy_reduction(size_average, reduce, reduction, op: str) -> str:
    """PyTorch's legacy ``size_average``/``reduce`` arguments, as
    ``torch.nn._reduction.legacy_get_string``: both None keeps
    ``reduction``; otherwise each defaults to True, ``reduce=False`` gives
    "none", else ``size_average`` picks "mean" or "sum", with PyTorch's
    deprecation warning."""
    if size_average is None and reduce is None:
        return reduction
    import warnings

    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    for name, v in (("size_average", size_average), ("reduce", reduce)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must be True, False or None, got {v!r}")
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                  UserWarning, stacklevel=3)
    return ret

"""``check=True`` on every loss call: the checks of :func:`fastloss.diagnose`
run before the kernel, each finding warned as a :class:`fastloss.LossWarning`
at the caller's line.

Every public loss function, and the ``__call__``, ``value_and_grad`` and
``grad_hess`` methods of every loss class, take a keyword-only
``check=False`` (the last keyword-only parameter) and pass it on to their
driver's call path -- ``_pointwise_api.run``, ``_rows_api.run``,
``_overlap_api.run_seg`` / ``run_lovasz`` / ``run_boxes``,
``_trim_api._trimmed_run``, ``_features_api.run_rows`` / ``run_batch`` --
as they pass ``n_threads``.  Each driver has
one ``if check: _check.check_call(...)`` before its kernel, with the
options it knows (weights, ``ignore_index``, a segmentation ``mode``, ...);
the default call pays that one test.  The losses whose operands reach
their drivers in pieces (``gan_discriminator_loss``, ``vae_loss``,
``ppo_clip_loss``, ``value_loss``, ``td_loss``, ``gan_generator_loss``,
``gradient_penalty``) make that one call themselves, before their first
driver call, with every operand by name; ``combined_loss`` checks each
term as that loss (``_diagnose.terms_findings``).

With ``check=True`` the call costs one summary pass over input and one over
target (label counts for integer labels) on top of the loss.
"""
from __future__ import annotations

import sys
import warnings

from ._diagnose import LossWarning, expectation, figures, resolve, run_checks, terms_findings


def check_call(op: str, input, target, *, others=None, n_threads=None, target_kind=None, **options) -> None:
    """Run diagnose's checks for a call of the loss ``op`` (its function's
    name) on ``input`` and ``target`` (the operands in those roles; the
    loss's other operands by name in ``others``, counted for NaN) with
    ``options`` (those the checks read: ``weight``, ``ignore_index``,
    ``mode``, ``from_logits``, ``loss``; None means not given), and warn
    each finding at the caller's line.  ``target_kind`` overrides the
    target's kind where the driver knows it better than the options do (a
    Tweedie power's support, from its spec)."""
    name, e, p = resolve(op)
    p.update({k: v for k, v in options.items() if v is not None})
    name, e = expectation(name, e, p)
    if target_kind:
        e = e._replace(target=target_kind)
    if e.input == "terms":          # a weighted sum of losses: each term's own checks
        findings = terms_findings(name, p, input, target, n_threads=n_threads)
    else:
        findings = run_checks(name, e, figures(name, e, input, target, p, n_threads=n_threads, others=others), p)
    if findings:
        level = _caller_stacklevel()
        for finding in findings:
            warnings.warn(LossWarning(finding), stacklevel=level)


def _module(frame) -> str:
    return frame.f_globals.get("__name__", "")


def _inside(frame) -> bool:
    m = _module(frame)
    return m == "fastloss" or m.startswith("fastloss.")


def _torch(frame) -> bool:
    return _module(frame).startswith("torch.")


def _caller_stacklevel() -> int:
    """The ``stacklevel`` (for a warning issued in :func:`check_call`) of the
    first frame outside fastloss: the user's call, also through
    fastloss.torch, whose frames interleave with torch.autograd's."""
    frames = []
    f = sys._getframe(2)            # check_call's caller: stacklevel 2
    while f is not None:
        frames.append(f)
        f = f.f_back
    last = -1
    for i, fr in enumerate(frames):
        if _inside(fr):
            last = i
        elif not _torch(fr):
            break
    j = last + 1
    while j < len(frames) and _torch(frames[j]):
        j += 1
    return j + 2

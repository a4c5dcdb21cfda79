"""Plain NumPy, float64, textbook versions of every fastloss loss.

This is the test oracle: written from the definitions, it shares no code
with the kernels.  Each function takes the same arguments as its fastloss
counterpart (by name; the reference keeps its own order: the loss's
parameters, then ``weight`` and ``reduction``; no ``out``/``n_threads``) and returns ``(value, grad)``
where ``grad`` is the gradient of ``value`` with respect to ``input`` (of
the sum, for ``reduction="none"``); functions named ``*_hess`` return the
diagonal Hessian.  Slow on purpose: clarity over speed.
"""
from .pointwise import *  # noqa: F401,F403
from .rows import *  # noqa: F401,F403
from .sequence import *  # noqa: F401,F403
from .regression import *  # noqa: F401,F403
from .segmentation import *  # noqa: F401,F403
from .boxes import *  # noqa: F401,F403
from .embeddings import *  # noqa: F401,F403
from .generative import *  # noqa: F401,F403

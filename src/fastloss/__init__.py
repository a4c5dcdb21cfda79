"""fastloss: fused value-and-gradient loss functions for the CPU.

Every loss gives its value, its gradient and (where defined) its diagonal
Hessian in one pass over memory, in Cython/C kernels parallelized with
OpenMP, for float32 and float64 NumPy arrays.  Functions follow
``torch.nn.functional`` names and semantics; classes follow ``torch.nn``.

>>> import numpy as np, fastloss as fl
>>> value, grad = fl.mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]), return_grad=True)
>>> value, grad
(2.5, array([1., 2.]))
"""
__version__ = "0.1.0"

from ._config import get_num_threads, set_num_threads, show_config
from ._cache import cache_info, set_cache_limit
from ._pointwise_losses import *  # noqa: F401,F403
from ._pointwise_losses import __all__ as _pw_all
from ._class_losses import *  # noqa: F401,F403
from ._class_losses import __all__ as _cl_all
from ._sequence_losses import *  # noqa: F401,F403
from ._sequence_losses import __all__ as _sq_all
from ._regression_losses import *  # noqa: F401,F403
from ._regression_losses import __all__ as _rg_all
from ._segmentation_losses import *  # noqa: F401,F403
from ._segmentation_losses import __all__ as _seg_all
from ._box_losses import *  # noqa: F401,F403
from ._box_losses import __all__ as _box_all
from ._embedding_losses import *  # noqa: F401,F403
from ._embedding_losses import __all__ as _emb_all
from ._generative_losses import *  # noqa: F401,F403
from ._generative_losses import __all__ as _gen_all
from ._rl_losses import *  # noqa: F401,F403
from ._rl_losses import __all__ as _rl_all
from ._combined import *  # noqa: F401,F403
from ._combined import __all__ as _cmb_all
from ._suggest import suggest
from ._diagnose import LossWarning, diagnose

__all__ = ["get_num_threads", "set_num_threads", "show_config", "__version__"] + list(_pw_all) + list(_cl_all)
__all__ += list(_sq_all)
__all__ += list(_rg_all)
__all__ += list(_seg_all) + list(_box_all)
__all__ += ["set_cache_limit", "cache_info"]
__all__ += list(_emb_all)
__all__ += ["suggest", "diagnose", "LossWarning"]
__all__ += list(_gen_all) + list(_rl_all) + list(_cmb_all)

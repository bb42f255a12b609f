"""Training mechanics: truncated BPTT, gradient clipping (global, by value and
Lipschitz-aware) and optimizers over one flat parameter buffer.

The optimizers (numba kernels) are imported on first use, so that
``import fastrnn`` stays free of numba.
"""

import importlib

from .bptt import TruncatedBPTT
from .clip import clip_grad_norm, clip_grad_value
from .lipschitz import SpectralBudget, lipschitz_bound, project_spectral

_LAZY = {"optimizers": None, "Optimizer": "optimizers", "SGD": "optimizers",
         "Adam": "optimizers", "AdamW": "optimizers", "RMSprop": "optimizers",
         "Adadelta": "optimizers", "Adagrad": "optimizers"}

__all__ = ["TruncatedBPTT", "clip_grad_norm", "clip_grad_value", "project_spectral",
           "SpectralBudget", "lipschitz_bound", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    return module if _LAZY[name] is None else getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

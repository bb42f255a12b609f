"""Dense (fully connected) layer on the CPU: the same single GEMMs the scans use.

All products go through numba's ``np.dot`` (SciPy's BLAS), the pool the scans
use, so a model mixing recurrent and dense layers keeps one BLAS thread pool.
"""

import numpy as np

from ._common import _add_product, _project, accumulate_outer


def forward(weight, bias, x_rows):
    """``x_rows @ weight.T + bias`` for (N, in) rows; returns a new (N, out) array."""
    out = np.empty((x_rows.shape[0], weight.shape[0]), x_rows.dtype)
    _project(x_rows, weight, np.empty(0, x_rows.dtype) if bias is None else bias, out)
    return out


def backward(weight, grad_weight, grad_bias, x_rows, dy_rows):
    """Accumulate ``grad_weight += dy^T x`` and ``grad_bias += sum(dy)``; return ``dy @ weight``."""
    accumulate_outer(grad_weight, dy_rows, x_rows)
    if grad_bias is not None:
        grad_bias += dy_rows.sum(axis=0)
    dx = np.zeros((dy_rows.shape[0], weight.shape[1]), dy_rows.dtype)
    _add_product(dx, dy_rows, weight)
    return dx

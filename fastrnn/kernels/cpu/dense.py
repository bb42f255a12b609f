"""Dense (fully connected) layer on the CPU: the same single GEMMs the scans use.

All products go through numba's ``np.dot`` (SciPy's BLAS), the pool the scans
use. Large products follow the latest recurrent scan's pool
(:func:`~._threads.follow_scan_pool`): after a scan on numba's threads they are
split into row blocks on numba's threads, one single-threaded BLAS call each,
so BLAS's worker threads never spin beside numba's: with a multi-threaded BLAS
read-out after a threaded LSTM, a char-LM training step (LSTM 256, batch
32 x 35) measured 25-43 ms instead of 8 here.
"""

import numpy as np

from ... import _memory
from ._common import _project, accumulate_outer, accumulate_product
from ._gemm import split_project
from ._threads import blas_threads_for, follow_scan_pool


def _threaded(rows, weight):
    return follow_scan_pool(rows * weight.shape[0] * weight.shape[1], rows)


def forward(weight, bias, x_rows):
    """``x_rows @ weight.T + bias`` for (N, in) rows; returns a new (N, out) array."""
    out = _memory.empty((x_rows.shape[0], weight.shape[0]), x_rows.dtype)
    bias = np.empty(0, x_rows.dtype) if bias is None else bias
    split = _threaded(x_rows.shape[0], weight)
    with blas_threads_for(split):
        (split_project if split else _project)(x_rows, weight, bias, out)
    return out


def backward(weight, grad_weight, grad_bias, x_rows, dy_rows):
    """Accumulate ``grad_weight += dy^T x`` and ``grad_bias += sum(dy)``; return ``dy @ weight``."""
    if grad_bias is not None:
        grad_bias += dy_rows.sum(axis=0)
    dx = _memory.zeros((dy_rows.shape[0], weight.shape[1]), dy_rows.dtype)
    split = _threaded(x_rows.shape[0], weight)
    with blas_threads_for(split):
        accumulate_outer(grad_weight, dy_rows, x_rows, split)
        accumulate_product(dx, dy_rows, weight, split)
    return dx

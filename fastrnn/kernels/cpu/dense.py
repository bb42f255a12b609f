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

from ._common import _dot_add, _project, accumulate_outer
from ._gemm import split_dot_add, split_outer_add, split_project
from ._threads import follow_scan_pool, single_blas_thread


def _threaded(rows, weight):
    return follow_scan_pool(rows * weight.shape[0] * weight.shape[1], rows)


def forward(weight, bias, x_rows):
    """``x_rows @ weight.T + bias`` for (N, in) rows; returns a new (N, out) array."""
    out = np.empty((x_rows.shape[0], weight.shape[0]), x_rows.dtype)
    bias = np.empty(0, x_rows.dtype) if bias is None else bias
    if _threaded(x_rows.shape[0], weight):
        with single_blas_thread():
            split_project(x_rows, weight, bias, out)
    else:
        _project(x_rows, weight, bias, out)
    return out


def backward(weight, grad_weight, grad_bias, x_rows, dy_rows):
    """Accumulate ``grad_weight += dy^T x`` and ``grad_bias += sum(dy)``; return ``dy @ weight``."""
    if grad_bias is not None:
        grad_bias += dy_rows.sum(axis=0)
    dx = np.zeros((dy_rows.shape[0], weight.shape[1]), dy_rows.dtype)
    if not _threaded(x_rows.shape[0], weight):
        accumulate_outer(grad_weight, dy_rows, x_rows)
        _dot_add(dx, np.ascontiguousarray(dy_rows), weight)
        return dx
    dy_rows = np.ascontiguousarray(dy_rows)
    with single_blas_thread():
        split_outer_add(grad_weight, dy_rows, np.ascontiguousarray(x_rows))
        split_dot_add(dx, dy_rows, weight)
    return dx

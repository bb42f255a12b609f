"""Embedding lookup on the GPU: a row gather, and a deterministic scatter-add backward.

The backward pass adds each output-gradient row into the gradient of the
table row it came from without atomics. The token ids (already on the host
for their range check) are sorted there, stably, so that the occurrences of
each table row form one run in token order; one thread per (table row
present, column) then adds its run in that order. Each gradient element is
thus summed in the order :func:`numpy.add.at` sums it on the CPU: the same
bits, on every run.
"""

import numpy as np
from numba import cuda

from ._arrays import upload
from ._jit import kernel, row_col


@kernel("void({f}[:, ::1], int64[::1], {f}[:, ::1])")
def _gather(weight, ids, out):
    index = cuda.grid(1)
    width = out.shape[1]
    if index >= out.shape[0] * width:
        return
    n, j = row_col(index, width)
    out[n, j] = weight[ids[n], j]


@kernel("void({f}[:, ::1], int64[::1], int64[::1], int64[::1], {f}[:, ::1])")
def _scatter_runs(grad, rows, starts, order, dy):
    # Thread (r, j) owns grad[rows[r], j] and adds the r-th run of dy rows in order.
    index = cuda.grid(1)
    width = grad.shape[1]
    if index >= rows.shape[0] * width:
        return
    r, j = row_col(index, width)
    total = grad[rows[r], j]
    for k in range(starts[r], starts[r + 1]):
        total += dy[order[k], j]
    grad[rows[r], j] = total


def forward(weight, ids):
    """Rows ``weight[ids]`` of a (V, D) device table for (N,) int64 device ids: (N, D)."""
    out = cuda.device_array((ids.shape[0], weight.shape[1]), weight.dtype)
    if out.size:
        _gather.over(out.size, weight, ids, out)
    return out


def runs(ids):
    """The host-side plan of the scatter: ``(rows, starts, order)`` for (N,) host ids.

    ``order`` sorts the ids stably; the ids ``rows[r]`` fill positions
    ``starts[r]:starts[r + 1]`` of the sorted ids (so ``starts`` has one more entry).
    """
    order = np.argsort(ids, kind="stable")
    rows, starts = np.unique(ids[order], return_index=True)
    starts = np.append(starts, ids.size)
    return rows.astype(np.int64), starts.astype(np.int64), order.astype(np.int64)


def backward(grad_weight, ids, dy_rows):
    """``grad_weight[ids[n]] += dy_rows[n]`` for every n, in place, in index order.

    Parameters
    ----------
    grad_weight : device array, shape (V, D)
    ids : host ndarray of int, shape (N,)
        In ``[0, V)`` (checked by the layer).
    dy_rows : device array, shape (N, D)
    """
    if ids.size == 0:
        return
    rows, starts, order = (upload(part) for part in runs(ids))
    _scatter_runs.over(rows.shape[0] * grad_weight.shape[1], grad_weight, rows, starts, order,
                       dy_rows)

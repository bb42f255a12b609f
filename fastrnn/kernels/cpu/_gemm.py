"""Matrix products for the numba-threaded scans (see :mod:`._threads`).

The ``split_*`` functions run the large GEMMs before and after a scan in
:data:`SPLIT` blocks of output rows, in parallel: one single-threaded BLAS call
per block (:func:`~._blas.gemm`, which adds into its output), or, for the
weight gradients, :func:`~._simd.outer_product_add`.
"""

import numpy as np
from numba import prange

from ._blas import gemm
from ._jit import inline_jit, par_jit
from ._simd import outer_product_add, panel_product_add

#: Row blocks of the large GEMMs: a constant, not the thread count, so that
#: the order of the sums (and so every result bit) is the same on any machine.
SPLIT = 2


@inline_jit
def batch_block(part, blocks, rows):
    """Rows ``r0:r1`` of block ``part`` of ``blocks`` near-equal blocks."""
    return part * rows // blocks, (part + 1) * rows // blocks


@inline_jit
def _row_block(part, rows):
    """Rows ``r0:r1`` of block ``part`` of :data:`SPLIT` near-equal blocks."""
    return batch_block(part, SPLIT, rows)


@par_jit
def split_project(x_rows, weight, bias, out):
    """``out = x_rows @ weight.T + bias``, in :data:`SPLIT` row blocks in parallel."""
    rows = x_rows.shape[0]
    for part in prange(SPLIT):
        r0, r1 = _row_block(part, rows)
        if r1 > r0:
            np.dot(x_rows[r0:r1], weight.T, out[r0:r1])
            if bias.shape[0] > 0:
                for row in range(r0, r1):
                    for col in range(out.shape[1]):
                        out[row, col] += bias[col]


@par_jit
def split_dot_add(out, a, b):
    """``out += a @ b`` (all C-contiguous), in :data:`SPLIT` row blocks in parallel."""
    rows, depth = a.shape
    cols = b.shape[1]
    for part in prange(SPLIT):
        r0, r1 = _row_block(part, rows)
        gemm(False, a, r0 * depth, False, b, 0, r1 - r0, cols, depth, 1.0, out, r0 * cols)


@inline_jit
def _tile_bound(part, rows):
    """Start of row block ``part`` of :data:`SPLIT` (``rows`` for ``part == SPLIT``),
    a multiple of 8 so that every block is whole row tiles but the last."""
    if part >= SPLIT:
        return rows
    return min(rows, part * rows // SPLIT // 8 * 8)


@par_jit
def split_outer_product_add(grad, d_rows, in_rows):
    """``grad += d_rows.T @ in_rows`` (:func:`~._simd.outer_product_add`), its rows in
    :data:`SPLIT` blocks on numba's threads."""
    rows = grad.shape[0]
    for part in prange(SPLIT):
        outer_product_add(d_rows, in_rows, grad, _tile_bound(part, rows),
                          _tile_bound(part + 1, rows))


@par_jit
def split_panel_product_add(out, a, w):
    """``out += a @ w`` (:func:`~._simd.panel_product_add`, all C-contiguous, ``w`` (K, N)
    with N whole vectors), the rows in :data:`SPLIT` blocks on numba's threads."""
    rows = a.shape[0]
    for part in prange(SPLIT):
        r0, r1 = _row_block(part, rows)
        panel_product_add(a[r0:r1], w, 0, out.shape[1], out[r0:r1], 0)

"""Matrix products for the numba-threaded scans (see :mod:`._threads`).

The ``split_*`` functions run the large GEMMs before and after
a scan as one single-threaded BLAS call per block of output rows, in parallel
(:func:`~._blas.gemm`, which adds into its output).
"""

import numpy as np
from numba import prange

from ._blas import gemm
from ._jit import inline_jit, par_jit

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


@par_jit
def split_outer_add(grad, d_rows, in_rows):
    """``grad += d_rows.T @ in_rows`` (all C-contiguous), in parallel over blocks of
    the rows of ``grad``: each block is one BLAS call over all rows of the inputs
    (a block of columns of ``d_rows``), added straight into ``grad``."""
    out_rows, cols = grad.shape
    depth = d_rows.shape[0]
    for part in prange(SPLIT):
        g0, g1 = _row_block(part, out_rows)
        gemm(True, d_rows, g0, False, in_rows, 0, g1 - g0, cols, depth, 1.0, grad, g0 * cols)

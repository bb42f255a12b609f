"""Matrix products for the numba-threaded scans (see :mod:`._threads`).

:func:`dot_rows` is the recurrent product of one thread's block of hidden units,
a register-blocked kernel: 4 rows of the state times 4 rows of the weights, 16
running sums over k that LLVM vectorises (about 175 GFLOP/s on one core here,
against about 200 for single-threaded OpenBLAS, and no packing of the weights
on every call). The ``split_*`` functions run the large GEMMs before and after
a scan as one single-threaded BLAS call per block of output rows, in parallel
(:func:`~._blas.gemm`, which adds into its output).
"""

import numpy as np
from numba import prange

from ._blas import gemm
from ._jit import gemm_jit, inline_jit, par_jit

#: Row blocks of the large GEMMs: a constant, not the thread count, so that
#: the order of the sums (and so every result bit) is the same on any machine.
SPLIT = 2


@gemm_jit
def dot_rows(a, b, b0, n, out, c0):
    """``out[i, c0 + r] = sum_k a[i, k] * b[b0 + r, k]`` for every row i of a, r < n.

    Parameters
    ----------
    a : ndarray, shape (M, K), C-contiguous
    b : ndarray, shape (N, K), C-contiguous
    b0, n : int
        The rows ``b0:b0 + n`` of ``b`` are used.
    out : ndarray, shape (M, >= c0 + n)
    c0 : int
    """
    rows, depth = a.shape
    zero = np.zeros(1, out.dtype)[0]
    r = 0
    while r + 4 <= n:
        w = b0 + r
        i = 0
        while i + 4 <= rows:
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for k in range(depth):
                w0, w1, w2, w3 = b[w, k], b[w + 1, k], b[w + 2, k], b[w + 3, k]
                x0, x1, x2, x3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
                s00 += x0 * w0
                s01 += x0 * w1
                s02 += x0 * w2
                s03 += x0 * w3
                s10 += x1 * w0
                s11 += x1 * w1
                s12 += x1 * w2
                s13 += x1 * w3
                s20 += x2 * w0
                s21 += x2 * w1
                s22 += x2 * w2
                s23 += x2 * w3
                s30 += x3 * w0
                s31 += x3 * w1
                s32 += x3 * w2
                s33 += x3 * w3
            c = c0 + r
            out[i, c], out[i, c + 1], out[i, c + 2], out[i, c + 3] = s00, s01, s02, s03
            out[i + 1, c], out[i + 1, c + 1], out[i + 1, c + 2], out[i + 1, c + 3] = (
                s10, s11, s12, s13)
            out[i + 2, c], out[i + 2, c + 1], out[i + 2, c + 2], out[i + 2, c + 3] = (
                s20, s21, s22, s23)
            out[i + 3, c], out[i + 3, c + 1], out[i + 3, c + 2], out[i + 3, c + 3] = (
                s30, s31, s32, s33)
            i += 4
        while i < rows:
            s0 = s1 = s2 = s3 = zero
            for k in range(depth):
                x = a[i, k]
                s0 += x * b[w, k]
                s1 += x * b[w + 1, k]
                s2 += x * b[w + 2, k]
                s3 += x * b[w + 3, k]
            c = c0 + r
            out[i, c], out[i, c + 1], out[i, c + 2], out[i, c + 3] = s0, s1, s2, s3
            i += 1
        r += 4
    while r < n:
        for i in range(rows):
            s = zero
            for k in range(depth):
                s += a[i, k] * b[b0 + r, k]
            out[i, c0 + r] = s
        r += 1


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

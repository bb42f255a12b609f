"""Matrix products for the numba-threaded scans (see :mod:`._threads`).

The ``split_*`` functions run the large GEMMs before and after a scan in
:data:`SPLIT` blocks of output rows, in parallel: the input projection as one
single-threaded BLAS call per block, the input gradient through
:func:`~._simd.panel_product_add` and the weight gradients through
:func:`~._simd.outer_product_add` (the register-tiled kernels of :mod:`._simd`).
"""

import numba
import numpy as np
from numba import prange

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


#: Rows of ``a`` per call of the panel product in :func:`split_panel_product_add`:
#: a pass's 64 rows stay in the core's L2 cache while every pair of column
#: vectors reads them (two threads, float32: 64 rows fastest or within 5% of
#: 128 and 256 at every input-gradient shape of the benchmarks).
PANEL_ROWS = 64


@par_jit
def split_project(x_rows, weight, bias, out):
    """``out = x_rows @ weight.T + bias``, in :data:`SPLIT` row blocks in parallel, one
    single-threaded BLAS call per block. (The panel product, bias first, was no
    faster here: (1120 x 28) by (28 x 1024) 0.63 against 0.50 ms, equal at the
    medium and large shapes; only (32000 x 32) by (32 x 512) gained, 8.0 against
    10.7.)"""
    rows = x_rows.shape[0]
    for part in prange(SPLIT):
        r0, r1 = _row_block(part, rows)
        if r1 > r0:
            np.dot(x_rows[r0:r1], weight.T, out[r0:r1])
            if bias.shape[0] > 0:
                for row in range(r0, r1):
                    for col in range(out.shape[1]):
                        out[row, col] += bias[col]


@inline_jit
def _tile_bound(part, parts, g0, g1):
    """Start of block ``part`` of ``parts`` of the rows ``g0:g1`` (``g1`` for
    ``part == parts``), ``g0`` plus a multiple of 8 so that every block is whole
    row tiles but the last."""
    if part >= parts:
        return g1
    return g0 + min(g1 - g0, part * (g1 - g0) // parts // 8 * 8)


def outer_parts():
    """Blocks of rows of :func:`split_outer_product_add`: :data:`SPLIT`, or one with one
    thread."""
    return min(SPLIT, numba.get_num_threads())


@par_jit
def split_outer_product_add(grad, d_rows, in_rows, more_grad, more_rows, g0, g1, parts=SPLIT):
    """``grad += d_rows.T @ in_rows`` and ``more_grad += d_rows.T @ more_rows`` in one
    sweep (:func:`~._simd.outer_product_add`; ``more_*`` with no columns: none)
    for the gradients' rows ``g0:g1`` (``d_rows``' columns ``g0:g1``), in
    ``parts`` blocks on numba's threads (:func:`outer_parts`).

    No bit depends on the blocks (an element's sums are the same whatever rows
    a call takes), so the thread count may choose them: each block streams all
    of the inputs, and one thread running two blocks did so twice (one core,
    float32, ms, two blocks against one: the RNN (100, 64, 128, 256)'s
    gradients 13.1 against 12.3, the LSTM (2000, 16, 32, 128)'s 57.0 against
    55.4)."""
    for part in prange(parts):
        outer_product_add(d_rows, in_rows, grad, more_rows, more_grad,
                          _tile_bound(part, parts, g0, g1), _tile_bound(part + 1, parts, g0, g1))


@par_jit
def split_panel_product_add(out, a, w):
    """``out += a @ w`` (:func:`~._simd.panel_product_add`, all C-contiguous, ``w`` (K, N)),
    the rows in :data:`SPLIT` blocks on numba's threads, :data:`PANEL_ROWS` at a time."""
    rows = a.shape[0]
    for part in prange(SPLIT):
        r0, r1 = _row_block(part, rows)
        for c0 in range(r0, r1, PANEL_ROWS):
            c1 = min(r1, c0 + PANEL_ROWS)
            panel_product_add(a[c0:c1], w, 0, out.shape[1], out[c0:c1], 0)

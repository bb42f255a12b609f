"""Weight panels packed in strips, and the recurrent product that reads them.

A scan multiplies its states by the same (K, N) weight panel at every step. The
register tiles of :mod:`._simd` read it two vectors of columns at a time, all K
rows of them. Stored row by row, those are 128-byte pieces one row apart (a
page boundary crossed every other row or so, which the hardware prefetchers do
not follow); packed here, each tile's columns are one contiguous strip of
``K x 2 vectors``, read front to back. One core, float32, GFLOP/s, rows
(padded by 64 bytes where 2 KiB long, the previous layout) against strips: 32 x 384 by 384 x 1024
102-105 against 108-109, 32 x 284 by 284 x 512 106-108 against 111-112,
64 x 512 by 512 x 2048 86-99 against 106-108; two threads 201-208 against
210-213 at 128 x 512 by 512 x 2048.

The layout, for ``S`` columns a strip (:func:`strip_columns`): column ``c`` of
the panel, row ``k``, is element ``[(c // S) * K + k, c % S]`` of a
``(ceil(N / S) * K, S)`` array; the last strip's columns past N are zeros.
Every sum runs over k in order, one fused multiply-add a term, exactly as
:func:`~._simd.panel_product`, so the result bits are the same.
"""

import numpy as np

from ._jit import inline_jit, row_jit
from ._simd import (K_BLOCK, VECTOR_BYTES, _column, _double_columns, _row_across_4_strips,
                    _single_columns)
from ._transpose import transpose_into


@inline_jit
def strip_columns(itemsize):
    """Columns of one strip: the two vectors of a register tile."""
    return 2 * VECTOR_BYTES // itemsize


# The product and its three entry points are inlined into their callers: a
# call out of line, with its arrays, cost about 40 ns, a third of a single row's
# (1, 32) by (32, 128) product (through two such calls, 154 against 108 ns;
# LSTM (200, 1, 8, 32) inference 352 -> 306 ns a step); the tiles are explicit
# vector code (:mod:`._simd`), which inlining cannot keep from vectorising.
@inline_jit
def _strip_product(a, depth, strips, cols, out, c0, accumulate):
    width = strips.shape[1]
    lanes = width // 2
    rows, lda = a.shape
    ldo = out.shape[1]
    whole = cols - cols % width
    for k0 in range(0, max(depth, 1), K_BLOCK):
        span = min(K_BLOCK, depth - k0)
        add = accumulate or k0 > 0
        c = 0
        if rows == 1:   # one row: 4 strips at a time, 8 sums in flight (same bits)
            while c + 4 * width <= whole:
                _row_across_4_strips(a, k0, lda, strips, c * depth + k0 * width, width, span,
                                     out, c0 + c, ldo, add, depth * width)
                c += 4 * width
        for c in range(c, whole, width):
            _double_columns(a, k0, span, strips, c * depth, out, c0 + c, add)
        base = whole * depth  # the last strip, when it is partial
        c = whole
        if c + lanes <= cols:
            _single_columns(a, k0, span, strips, base, out, c0 + c, add)
            c += lanes
        for i in range(rows):
            for col in range(c, cols):
                _column(a, i * lda + k0, lda, strips, base + k0 * width + col - whole, width,
                        span, out, i * ldo + c0 + col, ldo, add)


@inline_jit
def strip_product(a, strips, cols, out, c0):
    """``out[i, c0 + c] = sum_k a[i, k] * W[k, c]`` for every row i of ``a`` and
    ``c < cols``, ``W`` the (K, >= cols) panel packed in ``strips``.

    Parameters
    ----------
    a : ndarray, shape (M, K), C-contiguous
    strips : ndarray, shape (ceil(N / S) * K, S), C-contiguous, same dtype
        From :func:`pack_rows` or :func:`pack_columns`.
    cols : int
    out : ndarray, shape (M, >= c0 + cols), C-contiguous
        Overwritten in those columns.
    c0 : int
    """
    _strip_product(a, a.shape[1], strips, cols, out, c0, False)


@inline_jit
def strip_product_add(a, strips, cols, out, c0):
    """:func:`strip_product`, its sums starting from what ``out`` holds."""
    _strip_product(a, a.shape[1], strips, cols, out, c0, True)


@inline_jit
def leading_strip_product(a, depth, strips, cols, out, c0):
    """:func:`strip_product` of the first ``depth`` columns of ``a`` (read in place) by
    a panel of ``depth`` rows: ``out[i, c0 + c] = sum_{k < depth} a[i, k] * W[k, c]``."""
    _strip_product(a, depth, strips, cols, out, c0, False)


@row_jit
def _zero_columns(strips, row0, depth, q0, q1):
    for k in range(row0, row0 + depth):
        strips[k, q0:q1] = 0


@row_jit
def _pack_part(weight, hidden, j0, chunk, n_gates, strips, k0, depth):
    """:func:`pack_rows` of ``weight`` (G, K) into the rows ``k0:k0 + K`` of a panel
    ``depth`` rows deep (a part of a joined panel, :func:`pack_joined_rows`)."""
    part = weight.shape[1]
    width = strips.shape[1]
    units = min(hidden, j0 + chunk) - j0
    cols = n_gates * chunk
    for s in range((cols + width - 1) // width):
        row0 = s * depth + k0
        q = 0
        while q < width:
            c = s * width + q
            gate, u = c // chunk, c % chunk
            if c >= cols:
                run = width - q
                _zero_columns(strips, row0, part, q, width)
            elif u >= units:
                run = min(width - q, chunk - u)
                _zero_columns(strips, row0, part, q, q + run)
            else:
                run = min(width - q, units - u)
                transpose_into(weight, (gate * hidden + j0 + u) * part, part, run, part,
                               strips, row0 * width + q, width)
            q += run


@row_jit
def pack_rows(weight, hidden, j0, chunk, n_gates, strips):
    """Pack the (K, gates * chunk) panel whose column ``gate * chunk + u`` is row
    ``gate * hidden + j0 + u`` of ``weight`` (G, K), C-contiguous: a block of
    units' rows of every gate, transposed (all of ``W.T`` for ``hidden = chunk =
    G``, ``j0 = 0`` and one gate). Columns of units past ``hidden`` are zeros.
    """
    _pack_part(weight, hidden, j0, chunk, n_gates, strips, 0, weight.shape[1])


@row_jit
def pack_joined_rows(first, second, third, hidden, j0, chunk, n_gates, strips):
    """:func:`pack_rows` of the weights ``[first, second, third]`` (G, K1 + K2 + K3), each
    part (G, Ki) C-contiguous, read where it lies: no joined matrix is built
    (``np.concatenate`` of the d2l LSTM's ``[bias, W_ih, W_hh]`` took 0.14-0.20 ms
    of its 4.3-4.8 ms two-thread forward)."""
    depth = first.shape[1] + second.shape[1] + third.shape[1]
    _pack_part(first, hidden, j0, chunk, n_gates, strips, 0, depth)
    _pack_part(second, hidden, j0, chunk, n_gates, strips, first.shape[1], depth)
    _pack_part(third, hidden, j0, chunk, n_gates, strips, first.shape[1] + second.shape[1],
               depth)


@row_jit
def pack_columns(matrix, c0, cols, strips):
    """Pack the (K, cols) panel ``matrix[:, c0:c0 + cols]`` (``matrix`` (K, N))."""
    depth, ld = matrix.shape
    width = strips.shape[1]
    source, target = matrix.reshape(-1), strips.reshape(-1)
    for s in range((cols + width - 1) // width):
        n = np.uint64(min(width, cols - s * width))
        for k in range(depth):
            # unsigned offsets: no negative-index wraparound per element, so the copy is
            # vectorised (256 x 256 float32: 6 against 39 us)
            t0 = np.uint64((s * depth + k) * width)
            s0 = np.uint64(k * ld + c0 + s * width)
            for q in range(n):
                target[t0 + q] = source[s0 + q]
            for q in range(n, np.uint64(width)):
                target[t0 + q] = 0


@inline_jit
def _new_strips(cols, depth, like):
    """An uninitialised panel of ``cols`` columns ``depth`` rows deep, in ``like``'s dtype
    (allocated by numba: see :func:`packed_panel`)."""
    width = strip_columns(like.itemsize)
    return np.empty((-(-cols // width) * depth, width), like.dtype)


@row_jit
def _packed_transpose(matrix):
    cols, depth = matrix.shape
    strips = _new_strips(cols, depth, matrix)
    pack_rows(matrix, cols, 0, cols, 1, strips)
    return strips


@row_jit
def _packed(matrix):
    depth, cols = matrix.shape
    strips = _new_strips(cols, depth, matrix)
    pack_columns(matrix, 0, cols, strips)
    return strips


@row_jit
def _packed_joined(first, second, third):
    cols = first.shape[0]
    strips = _new_strips(cols, first.shape[1] + second.shape[1] + third.shape[1], first)
    pack_joined_rows(first, second, third, cols, 0, cols, 1, strips)
    return strips


def joined_parts(bias, *weights):
    """``(bias as a (G, 1) column (zeros for no bias), W_1, W_2)``, C-contiguous, ``W_2``
    (G, 0) when one weight is given: the parts of the joined weights ``[bias,
    W_1, W_2]`` for :func:`pack_joined_rows`."""
    gates, dtype = weights[0].shape[0], weights[0].dtype
    column = (np.zeros((gates, 1), dtype) if bias is None
              else np.ascontiguousarray(bias).reshape(gates, 1))
    parts = [np.ascontiguousarray(w) for w in weights] + [np.empty((gates, 0), dtype)]
    return column, parts[0], parts[1]


def joined_panel(bias, *weights):
    """The packed panel of ``[bias, *weights]^T`` (one or two weights (G, Ki); zeros for
    no bias): :func:`packed_panel` of the joined weights, without building them."""
    return _packed_joined(*joined_parts(bias, *weights))


def packed_panel(matrix, transpose=False):
    """``matrix`` (K, N), or ``matrix.T`` for a (N, K) ``matrix``, packed in strips.

    The strips are allocated by numba, which starts arrays on 32 bytes, where
    NumPy's own start on 16: a 64-byte vector 16 bytes into a cache line takes a
    split load. A single row's product (1, 32) by (32, 128), one core: 188 ns
    with the panel 16 bytes past a 32-byte boundary, 143-146 ns on a 32- or
    64-byte one; LSTM (200, 1, 8, 32) inference 119 against 110 us.
    """
    matrix = np.ascontiguousarray(matrix)
    return _packed_transpose(matrix) if transpose else _packed(matrix)

"""Matrix products and reductions on the device: a tiled shared-memory GEMM.

Everything that is a matrix product runs through :func:`matmul`: the input
projection of all steps, each step's recurrent product, the weight gradients
over all steps and the input gradient. One thread computes one element of the
result, summing over ``k`` in order, from ``TILE x TILE`` tiles of both
operands staged in shared memory; so every result is the same bits from run to
run (no atomics, no split sums). Column sums (bias gradients) use one thread
per column, summing rows in order, for the same reason.
"""

import functools

import numba
from numba import cuda

from ._jit import Kernel, kernel, row_col

#: Side of the square tiles (and thread blocks) of the GEMM. Read at every
#: launch; tests lower it so that tiny matrices still span several blocks.
TILE = 16

#: Most blocks along a CUDA grid's y axis (the x axis allows 2**31 - 1): the
#: GEMM puts the columns of ``c`` there and its rows, which can number T*B, on x.
_MAX_GRID_Y = 65535

#: The GEMM's signature: ``(a, b, c, trans_a, trans_b, accumulate)``.
GEMM_SIGNATURE = "void({f}[:, ::1], {f}[:, ::1], {f}[:, ::1], boolean, boolean, boolean)"


def gemm_source(tile, float_type):
    """The GEMM kernel's Python source for one tile size and float type.

    ``c = op(a) @ op(b)`` (or ``c += ...`` with ``accumulate``), ``op`` being a
    transpose where ``trans_a``/``trans_b``. Launched on ``(tile, tile)``
    blocks, one thread per element of ``c``; the tile size is a compile-time
    constant of the shared arrays, hence one kernel per tile size.
    """
    element = getattr(numba, float_type)

    def gemm(a, b, c, trans_a, trans_b, accumulate):
        a_tile = cuda.shared.array((tile, tile), element)
        b_tile = cuda.shared.array((tile, tile), element)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.x * tile + ty   # rows (up to T*B of them) on the long grid axis
        col = cuda.blockIdx.y * tile + tx
        rows, cols = c.shape
        depth = a.shape[0] if trans_a else a.shape[1]
        total = element(0)
        for k0 in range(0, depth, tile):
            k = k0 + tx
            if row < rows and k < depth:
                a_tile[ty, tx] = a[k, row] if trans_a else a[row, k]
            else:
                a_tile[ty, tx] = element(0)
            k = k0 + ty
            if col < cols and k < depth:
                b_tile[ty, tx] = b[col, k] if trans_b else b[k, col]
            else:
                b_tile[ty, tx] = element(0)
            cuda.syncthreads()
            for kk in range(tile):
                total += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()
        if row < rows and col < cols:
            if accumulate:
                c[row, col] += total
            else:
                c[row, col] = total

    gemm.__name__ = f"gemm_tile{tile}_{float_type}"
    return gemm


@functools.lru_cache(maxsize=None)
def gemm_kernel(tile, float_type):
    """The compiled (lazily) GEMM :class:`~._jit.Kernel` for one tile size and float type."""
    return Kernel(gemm_source(tile, float_type), GEMM_SIGNATURE,
                  name=f"{__name__}.gemm[tile={tile},{float_type}]", float_types=(float_type,))


def matmul(a, b, c, trans_a=False, trans_b=False, accumulate=False):
    """``c = op(a) @ op(b)`` (``+=`` with ``accumulate``) for C-contiguous device matrices.

    Parameters
    ----------
    a, b : device array, 2-D
        ``op(a)`` is ``a.T`` when ``trans_a``, else ``a``; likewise ``b``.
    c : device array, 2-D, written (or added to) in place
    """
    rows, depth = (a.shape[1], a.shape[0]) if trans_a else a.shape
    depth_b, cols = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if depth != depth_b or c.shape != (rows, cols):
        raise ValueError(f"matmul: op(a) is {rows}x{depth}, op(b) {depth_b}x{cols}, "
                         f"c {c.shape[0]}x{c.shape[1]}: shapes do not match")
    tile = TILE
    grid = (max(1, -(-rows // tile)), max(1, -(-cols // tile)))
    if grid[1] > _MAX_GRID_Y:
        raise ValueError(f"matmul: c has {cols} columns, more than the {_MAX_GRID_Y * tile} "
                         f"that {_MAX_GRID_Y} blocks of {tile} columns cover")
    gemm_kernel(tile, c.dtype.name).launch(grid, (tile, tile), a, b, c, trans_a, trans_b,
                                           accumulate)


@kernel("void({f}[:, ::1], {f}, {f}[::1])")
def _add_column_sums(rows, zero, out):
    col = cuda.grid(1)
    if col >= out.shape[0]:
        return
    total = zero
    for row in range(rows.shape[0]):
        total += rows[row, col]
    out[col] += total


def add_column_sums(rows, out):
    """``out += `` the sums of the columns of a (N, G) device matrix, rows added in order."""
    _add_column_sums.over(rows.shape[1], rows, rows.dtype.type(0), out)


@kernel("void({f}[:, ::1], {f}[::1])")
def _add_row(matrix, row):
    index = cuda.grid(1)
    cols = matrix.shape[1]
    if index >= matrix.shape[0] * cols:
        return
    r, c = row_col(index, cols)
    matrix[r, c] += row[c]


def add_row(matrix, row):
    """``matrix += row`` on the device, ``row`` broadcast over the rows of ``matrix``."""
    _add_row.over(matrix.shape[0] * matrix.shape[1], matrix, row)


@kernel("void({f}[:, ::1], int64, {f}[:, ::1])")
def _copy_columns(source, first, target):
    index = cuda.grid(1)
    cols = target.shape[1]
    if index >= target.shape[0] * cols:
        return
    r, c = row_col(index, cols)
    target[r, c] = source[r, first + c]


def columns(source, first, count):
    """A C-contiguous device copy of ``source[:, first:first + count]``."""
    target = cuda.device_array((source.shape[0], count), source.dtype)
    _copy_columns.over(target.shape[0] * count, source, first, target)
    return target

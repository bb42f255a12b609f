"""BLAS ``gemm`` for numba code: accumulation into the output, and sub-matrices.

numba's ``np.dot`` can neither add into its output nor take a block of columns
of a matrix, so a product added to a gradient went through a scratch array and
an extra pass over memory, and a product split by output columns was
impossible. :func:`gemm` calls the BLAS numba's ``np.dot`` calls (SciPy's
OpenBLAS, through numba's ``numba_xxgemm`` helper, so compiled kernels stay
cacheable) with ``beta`` and leading dimensions of its own. It runs the
gradient GEMMs of the scans that stay on BLAS's threads (:mod:`._common`); on
numba's threads the register-tiled kernels of :mod:`._simd` run them instead.
"""

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

from ._jit import inline_jit

ensure_blas()  # loads SciPy's BLAS for numba's helper

_VOID_P = types.voidptr
#: numba's C helper around SciPy's ``sgemm``/``dgemm`` (column-major, Fortran
#: conventions), chosen by the first argument, ``'s'`` or ``'d'``.
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp,
    _VOID_P, _VOID_P, types.intp, _VOID_P, types.intp, _VOID_P, _VOID_P, types.intp))

_TRANSPOSE = np.int8(ord("t"))
_NO_TRANSPOSE = np.int8(ord("n"))
_SINGLE = np.int8(ord("s"))
_DOUBLE = np.int8(ord("d"))


@intrinsic
def _address(typingctx, array, offset):
    """The address of element ``offset`` (counted in elements) of a contiguous array."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.bitcast(builder.gep(data, [args[1]]), cgutils.voidptr_t)
    return types.voidptr(array, offset), codegen


@inline_jit
def gemm(trans_a, a, a_offset, trans_b, b, b_offset, m, n, k, beta, c, c_offset):
    """``C = op(A) @ op(B) + beta * C`` on blocks of C-contiguous 2-D arrays.

    Parameters
    ----------
    trans_a, trans_b : bool
        ``op(A)`` is ``A.T`` when set (then ``A`` is stored k x m).
    a, b, c : ndarray, 2-D, C-contiguous, all float32 or all float64
        The blocks start at the flat element offsets ``a_offset``, ``b_offset``,
        ``c_offset`` and keep the row strides of their arrays: ``op(A)`` is
        m x k, ``op(B)`` k x n and ``C`` m x n.
    beta : float
        0 overwrites ``C``; 1 adds the product to it.
    """
    if m == 0 or n == 0:
        return
    scalars = np.empty(2, c.dtype)
    scalars[0] = 1.0
    scalars[1] = beta
    kind = _SINGLE if c.itemsize == 4 else _DOUBLE
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    _xxgemm(kind, _TRANSPOSE if trans_b else _NO_TRANSPOSE,
            _TRANSPOSE if trans_a else _NO_TRANSPOSE, n, m, k,
            _address(scalars, 0), _address(b, b_offset), max(1, b.shape[1]),
            _address(a, a_offset), max(1, a.shape[1]),
            _address(scalars, 1), _address(c, c_offset), max(1, c.shape[1]))

"""A register-tiled matrix product written as explicit LLVM vector code.

:func:`panel_product` computes ``out[i, c0 + c] = sum_k a[i, k] * w[k, w0 + c]``,
with ``a`` the states of the batch (B, K) and ``w`` a (K, N) panel of weights
(the recurrent product of a time step reads the same panel packed in strips,
:mod:`._strips`, through the same tiles; this form runs the input gradient).
Its inner kernel is a numba
intrinsic (:func:`_tile`) that keeps a tile of 8 rows by 2 vectors of the
output in registers for the whole sum over k: per k it loads two vectors of
``w``, broadcasts one element of each of the 8 rows of ``a`` and issues 16
fused multiply-adds. Nothing is reduced across vector lanes, so the sum over
k runs in order, as in a BLAS ``gemm``, and each output element is computed
the same way whatever the tile it falls in or the thread that runs it.

Why an intrinsic: LLVM does not vectorise that loop order from scalar numba
code (the accumulators would live in memory), and the order it does
vectorise (a sum over k per output element, the scans' earlier kernel) ends
every output element with a horizontal sum across lanes. Measured on one
core here (Zen 5, AVX-512), 32 x 256 by 256 x 512: 35.5 us (236 GFLOP/s)
against 46.5 us for that kernel and 150-200 GFLOP/s for single-threaded
OpenBLAS at these shapes.

The vector width is the machine's: 64 bytes with AVX-512, else 32 (LLVM
splits or merges the vectors for any other target, so the code is correct
everywhere).
"""

import llvmlite.binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import row_jit

#: Bytes per vector register the tiles are written for.
VECTOR_BYTES = 64 if "+avx512f" in llvm_binding.get_host_cpu_features().flatten() else 32


def _tile(rows, vectors, full=True, a_by_columns=False, add_at_end=False, across_strips=False):
    """Intrinsic ``tile(a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate)`` for one tile
    shape.

    With ``L`` lanes per vector (:data:`VECTOR_BYTES` over the item size, or 1
    when not ``full``: the same arithmetic on single columns), it sets
    ``out.flat[o0 + r * ldo + c] = sum_{k < depth} a.flat[a0 + r * lda + k] *
    w.flat[w0 + k * ldw + c]`` for ``r < rows`` and ``c < vectors * L`` (adds the sum
    to what is there when ``accumulate``): every offset counts elements from the
    start of a C-contiguous array. With ``a_by_columns`` the tile reads ``a``
    transposed: ``a.flat[a0 + k * lda + r]`` in place of ``a.flat[a0 + r * lda + k]``
    (the weight gradients' ``d_pre^T``, read where it lies). With ``add_at_end``
    the sums start from zero and ``accumulate`` adds each finished sum to the
    output element (as BLAS does with ``beta = 1``) instead of starting the sum
    from it: a long sum cut into passes then adds one rounded partial sum per
    pass, not every term, to a running total that may be much larger.

    With ``across_strips`` the intrinsic takes one more argument, ``step``, and
    reads ``w`` as packed strips of 2 vectors (:mod:`._strips`): vector ``v`` of
    term k at ``w.flat[w0 + (v // 2) * step + k * ldw + (v % 2) * L]``, so one
    row's tile spans ``vectors / 2`` neighbouring strips (``step`` elements
    apart), with as many independent sums in flight.
    """
    def typed(a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate, *step):
        arrays = (a, w, out)
        if not all(isinstance(x, types.Array) and x.layout == "C" for x in arrays):
            return None
        if a.dtype not in (types.float32, types.float64) or any(
                x.dtype != a.dtype for x in arrays):
            return None
        signature = types.void(a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate, *step)

        def codegen(context, builder, sig, args):
            a_arg, a0, lda, w_arg, w0, ldw, depth, out_arg, o0, ldo, accumulate = args[:11]
            item = context.get_value_type(a.dtype)
            size = a.dtype.bitwidth // 8
            lanes = VECTOR_BYTES // size if full else 1
            vector = ir.VectorType(item, lanes)
            index = ir.IntType(64)
            a_ptr, w_ptr, out_ptr = (context.make_array(t)(context, builder, v).data
                                     for t, v in zip(arrays, (a_arg, w_arg, out_arg)))
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fma.v{lanes}{item.intrinsic_name}")
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            undef = ir.Constant(vector, ir.Undefined)
            sums = [[cgutils.alloca_once_value(builder, ir.Constant(vector, None))
                     for _ in range(vectors)] for _ in range(rows)]
            if a_by_columns:
                a_rows = [builder.add(a0, index(r)) for r in range(rows)]
            else:
                a_rows = [builder.add(a0, builder.mul(lda, index(r))) for r in range(rows)]
            out_rows = [builder.add(o0, builder.mul(ldo, index(r))) for r in range(rows)]

            def vector_at(pointer, offset):
                return builder.bitcast(builder.gep(pointer, [offset]), vector.as_pointer())

            def out_vector(r, v):
                return vector_at(out_ptr, builder.add(out_rows[r], index(v * lanes)))

            if not add_at_end:
                with builder.if_then(accumulate):
                    for r in range(rows):
                        for v in range(vectors):
                            builder.store(builder.load(out_vector(r, v), align=size),
                                          sums[r][v])

            if across_strips:
                w_starts = [builder.add(builder.add(w0, builder.mul(args[11], index(v // 2))),
                                        index(v % 2 * lanes)) for v in range(vectors)]
            else:
                w_starts = [builder.add(w0, index(v * lanes)) for v in range(vectors)]
            with cgutils.for_range(builder, depth) as loop:
                k = loop.index
                w_row = builder.mul(k, ldw)
                w_vectors = [builder.load(vector_at(w_ptr, builder.add(w_start, w_row)),
                                          align=size) for w_start in w_starts]
                term = builder.mul(k, lda) if a_by_columns else k
                for r in range(rows):
                    element = builder.load(builder.gep(a_ptr, [builder.add(a_rows[r], term)]))
                    broadcast = builder.shuffle_vector(
                        builder.insert_element(undef, element, ir.IntType(32)(0)), undef, splat)
                    for v in range(vectors):
                        total = builder.call(fma, [broadcast, w_vectors[v],
                                                   builder.load(sums[r][v])])
                        builder.store(total, sums[r][v])
            if add_at_end:
                with builder.if_then(accumulate):
                    for r in range(rows):
                        for v in range(vectors):
                            builder.store(builder.fadd(builder.load(out_vector(r, v), align=size),
                                                       builder.load(sums[r][v])), sums[r][v])
            for r in range(rows):
                for v in range(vectors):
                    builder.store(builder.load(sums[r][v]), out_vector(r, v), align=size)
            return context.get_dummy_value()

        return signature, codegen

    if across_strips:
        @intrinsic
        def tile(typingctx, a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate, step):
            return typed(a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate, step)
    else:
        @intrinsic
        def tile(typingctx, a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate):
            return typed(a, a0, lda, w, w0, ldw, depth, out, o0, ldo, accumulate)
    return tile


# One intrinsic per tile shape, and one driver per tile width below: numba takes
# no intrinsic as an argument, and a driver built by a factory closing over its
# tiles is not found again in numba's on-disk cache (measured: no cache hits).
_tile_8x2, _tile_4x2, _tile_2x2, _tile_1x2 = (_tile(rows, 2) for rows in (8, 4, 2, 1))
_tile_8x1, _tile_4x1, _tile_2x1, _tile_1x1 = (_tile(rows, 1) for rows in (8, 4, 2, 1))
_column = _tile(1, 1, full=False)
#: One row across 4 strips (8 vectors): a single row's product (a batch of one)
#: has 8 independent sums in flight instead of 2 (:func:`~._strips.strip_product`).
_row_across_4_strips = _tile(1, 8, across_strips=True)


@row_jit
def _double_columns(a, k0, depth, w, w0, out, c0, accumulate):
    """Tiles of 2 vectors of columns at ``w0``/``c0`` for every row of ``a``, over
    ``a``'s columns (and ``w``'s rows) ``k0:k0 + depth``."""
    rows, lda = a.shape
    ldw, ldo = w.shape[1], out.shape[1]
    w0 += k0 * ldw
    i = 0
    while i + 8 <= rows:
        _tile_8x2(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 8
    if i + 4 <= rows:
        _tile_4x2(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 4
    if i + 2 <= rows:
        _tile_2x2(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 2
    if i < rows:
        _tile_1x2(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)


@row_jit
def _single_columns(a, k0, depth, w, w0, out, c0, accumulate):
    """Tiles of 1 vector of columns; as :func:`_double_columns`."""
    rows, lda = a.shape
    ldw, ldo = w.shape[1], out.shape[1]
    w0 += k0 * ldw
    i = 0
    while i + 8 <= rows:
        _tile_8x1(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 8
    if i + 4 <= rows:
        _tile_4x1(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 4
    if i + 2 <= rows:
        _tile_2x1(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)
        i += 2
    if i < rows:
        _tile_1x1(a, i * lda + k0, lda, w, w0, ldw, depth, out, i * ldo + c0, ldo, accumulate)


#: Rows of the panel (terms of each sum) a pass covers: longer sums run in
#: passes of this many terms, each adding into the output the pass before
#: wrote (the partial sums go through memory exactly, so the result bits do
#: not change), so that a pass's rows of ``a`` and its strip of the panel stay
#: in cache. Medians of 7 interleaved runs on one core, float32, GFLOP/s, one
#: pass against passes of 512: 64 x 1536 by 1536 x 512 (the GRU's large
#: backward step) 166 against 252, 64 x 2048 by 2048 x 512 219 against 243,
#: and within 3% at every shape whose K is at most 1024 (passes of 128 or 256
#: were slower).
K_BLOCK = 512


@row_jit
def _panel(a, w, w0, cols, out, c0, accumulate):
    lanes = VECTOR_BYTES // a.itemsize
    rows, depth = a.shape
    ldw, ldo = w.shape[1], out.shape[1]
    for k0 in range(0, max(depth, 1), K_BLOCK):
        span = min(K_BLOCK, depth - k0)
        add = accumulate or k0 > 0
        c = 0
        while c + 2 * lanes <= cols:
            _double_columns(a, k0, span, w, w0 + c, out, c0 + c, add)
            c += 2 * lanes
        if c + lanes <= cols:
            _single_columns(a, k0, span, w, w0 + c, out, c0 + c, add)
            c += lanes
        for i in range(rows):
            for col in range(c, cols):
                _column(a, i * depth + k0, depth, w, w0 + k0 * ldw + col, ldw, span, out,
                        i * ldo + c0 + col, ldo, add)


@row_jit
def panel_product(a, w, w0, cols, out, c0):
    """``out[i, c0 + c] = sum_k a[i, k] * w[k, w0 + c]`` for every row i of ``a``, c < cols.

    Parameters
    ----------
    a : ndarray, shape (M, K), C-contiguous
    w : ndarray, shape (K, >= w0 + cols), C-contiguous
        The panel's columns ``w0:w0 + cols`` are used (rows of any length: a
        block of columns of a larger matrix is read in place).
    w0, cols : int
    out : ndarray, shape (M, >= c0 + cols), C-contiguous, same dtype
        Overwritten in those columns.
    c0 : int

    Notes
    -----
    Every sum over k runs in order, in one fused multiply-add per term, so an
    element's value depends only on its row of ``a`` and column of ``w``.
    """
    _panel(a, w, w0, cols, out, c0, False)


@row_jit
def panel_product_add(a, w, w0, cols, out, c0):
    """``out[i, c0 + c] += sum_k a[i, k] * w[k, w0 + c]``: :func:`panel_product` with its
    sums starting from what ``out`` holds (each term one fused multiply-add on
    the running sum, in order)."""
    _panel(a, w, w0, cols, out, c0, True)


# Weight gradients: the tiles read ``a`` by columns (``d_pre^T`` where it lies).
_outer_8x2, _outer_8x1, _outer_1x2, _outer_1x1 = (
    _tile(rows, vectors, a_by_columns=True, add_at_end=True)
    for rows, vectors in ((8, 2), (8, 1), (1, 2), (1, 1)))

#: Terms of the sums of :func:`outer_product_add` per pass: each pass's partial sums
#: are added to the gradient.
OUTER_PASS = 256
#: Bytes of an input row a sweep of :func:`outer_product_add` covers (256 float32
#: or 128 float64 columns of ``grad``): the inputs' rows of a pass
#: (:data:`OUTER_PASS` of them) stay in a core's L2 cache while every row tile of
#: the gradient reads them. It was 256 columns for both: one core, (6400 x 1536)
#: terms by 512 columns, float64 46.8 GFLOP/s at 128 columns a sweep against
#: 39.8 at 256; two threads, float64 forward+backward, new against old: GRU
#: (100, 128, 512, 512) 0.92, LSTM (100, 64, 128, 256) 0.97, LSTM (35, 32, 28,
#: 256) 0.97. (float32 at 128 columns: within 1.5% either way.) No bit depends
#: on it.
OUTER_ROW_BYTES = 1024


@row_jit
def _outer_tiles(d, g, k0, span, inputs, c, grad, wide, eight):
    """One tile of rows ``g:g + 8`` (one row, when not ``eight``) and 2 vectors (1 when
    not ``wide``) of columns from ``c`` of ``grad``."""
    ldd, ldi, ldg = d.shape[1], inputs.shape[1], grad.shape[1]
    a0, w0, o0 = k0 * ldd + g, k0 * ldi + c, g * ldg + c
    if eight:
        if wide:
            _outer_8x2(d, a0, ldd, inputs, w0, ldi, span, grad, o0, ldg, True)
        else:
            _outer_8x1(d, a0, ldd, inputs, w0, ldi, span, grad, o0, ldg, True)
    elif wide:
        _outer_1x2(d, a0, ldd, inputs, w0, ldi, span, grad, o0, ldg, True)
    else:
        _outer_1x1(d, a0, ldd, inputs, w0, ldi, span, grad, o0, ldg, True)


@row_jit
def _outer_columns(d, g, k0, span, inputs, grad, c, c1, lanes, eight):
    """The tiles of :func:`_outer_tiles` for grad rows ``g`` over its columns ``c:c1``."""
    while c + 2 * lanes <= c1:
        _outer_tiles(d, g, k0, span, inputs, c, grad, True, eight)
        c += 2 * lanes
    if c < c1:
        _outer_tiles(d, g, k0, span, inputs, c, grad, False, eight)


@row_jit
def outer_product_add(d, inputs, grad, more_inputs, more_grad, g0, g1):
    """``grad[g] += sum_k d[k, g] * inputs[k]`` for the rows ``g0:g1`` of ``grad``, and
    the same for ``more_grad`` and ``more_inputs`` in the same sweep over ``d``.

    A weight gradient, ``grad += d^T @ inputs``, read where it lies: ``d`` (K, G)
    the gradients of the pre-activations of every step and sequence, ``inputs``
    (K, N) what multiplied the weights, ``grad`` (G, N). The K terms are summed in
    passes of :data:`OUTER_PASS`, in order (one fused multiply-add each), and
    each pass's sum is added to ``grad``, as BLAS does: an element's bits do not
    depend on which rows a thread takes, nor on whether a second gradient is
    summed beside it, and its rounding error grows with the number of passes,
    not of terms (float32, K = 32000: 4.7e-7 relative, against 6.7e-7 for
    OpenBLAS and 7e-6 for one running sum started from ``grad``).

    The second pair (``W_hh``'s gradient beside ``W_ih``'s: both multiply
    ``d``) reuses each tile's strip of ``d`` from the L1 cache, which pays most
    beside a narrow input (:data:`FUSED_OUTER_BYTES`).

    Parameters
    ----------
    d : ndarray, shape (K, G), C-contiguous
    inputs, more_inputs : ndarray, shape (K, N) and (K, M), C-contiguous, N and M
        multiples of the vector lanes (``more_*`` of M = 0 columns: none)
    grad, more_grad : ndarray, shape (G, N) and (G, M), C-contiguous, same dtype
    g0, g1 : int
        The rows to update (each row's bits are the same whatever rows a call
        takes: a tile of 8 rows and a single row sum alike).
    """
    lanes = VECTOR_BYTES // d.itemsize
    depth = d.shape[0]
    cols = grad.shape[1]
    total = cols + more_grad.shape[1]
    sweep = OUTER_ROW_BYTES // d.itemsize
    for k0 in range(0, depth, OUTER_PASS):
        span = min(OUTER_PASS, depth - k0)
        for c0 in range(0, total, sweep):
            c1 = min(total, c0 + sweep)
            g = g0
            while g < g1:
                eight = g + 8 <= g1
                if c0 < cols:
                    _outer_columns(d, g, k0, span, inputs, grad, c0, min(c1, cols), lanes, eight)
                if c1 > cols:
                    _outer_columns(d, g, k0, span, more_inputs, more_grad, max(c0, cols) - cols,
                                   c1 - cols, lanes, eight)
                g += 8 if eight else 1


#: Two weight gradients share one sweep of :func:`outer_product_add` over ``d``
#: while a pass's rows of both inputs take at most this many bytes (they stay in
#: L2 next to the strips of ``d``). Two threads (one), float32, ms, two sweeps
#: against one: (32000 x 512) terms by 32 + 128 columns 33.1-35.4 against
#: 28.1-29.8 (65.8-68.6 against 57.3-62.2), 6400 x 1024 by 128 + 256 27.3-30.0
#: against 26.0-26.8, 1120 x 1024 by 32 + 256 3.30-3.45 against 3.13-3.30;
#: 12800 x 2048 by 512 + 512 (1 MiB) was slower shared: 262-275 against 276-280.
FUSED_OUTER_BYTES = 512 * 1024

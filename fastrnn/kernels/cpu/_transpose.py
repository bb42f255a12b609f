"""Matrix transposes in vector registers, for packing weights into product panels.

Every forward scan reads ``W^T`` (a (K, G) panel) where the parameters hold
``W`` (G, K), so each call transposes its recurrent weights once. Element by
element that ran at about 4 cycles an element: 284 us for a 1024 x 256 float32
``W_hh``, 7% of the d2l LSTM forward. :func:`transpose_into` moves square
tiles of one vector's lanes through registers instead (:func:`_tile`):
24 us for the same matrix here.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import row_jit
from ._simd import VECTOR_BYTES


def _interleave(builder, first, second, half, lanes):
    """``first[half:half + lanes/2]`` and ``second``'s same lanes, alternating."""
    mask = []
    for j in range(lanes // 2):
        mask += [half + j, lanes + half + j]
    return builder.shuffle_vector(first, second, ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                             mask))


@intrinsic
def _tile(typingctx, source, s0, lds, target, t0, ldt):
    """``target.flat[t0 + c * ldt + r] = source.flat[s0 + r * lds + c]`` for ``r, c < L``,
    ``L`` the lanes of one vector (:data:`~._simd.VECTOR_BYTES` over the item size).

    The ``L`` rows are loaded as vectors and pass ``log2 L`` rounds of pairing row
    ``i`` with row ``i + L/2`` and interleaving their low halves into new row ``2i``,
    their high halves into row ``2i + 1`` (after the last round row ``c`` holds
    column ``c``); each round is ``L`` two-vector shuffles.
    """
    if not (isinstance(source, types.Array) and isinstance(target, types.Array)
            and source.layout == "C" and target.layout == "C"
            and source.dtype == target.dtype
            and source.dtype in (types.float32, types.float64)):
        return None
    signature = types.void(source, s0, lds, target, t0, ldt)

    def codegen(context, builder, sig, args):
        source_arg, s0, lds, target_arg, t0, ldt = args
        item = context.get_value_type(source.dtype)
        size = source.dtype.bitwidth // 8
        lanes = VECTOR_BYTES // size
        vector = ir.VectorType(item, lanes)
        index = ir.IntType(64)
        source_ptr = context.make_array(source)(context, builder, source_arg).data
        target_ptr = context.make_array(target)(context, builder, target_arg).data

        def at(pointer, start, stride, row):
            offset = builder.add(start, builder.mul(stride, index(row)))
            return builder.bitcast(builder.gep(pointer, [offset]), vector.as_pointer())

        rows = [builder.load(at(source_ptr, s0, lds, r), align=size) for r in range(lanes)]
        for _ in range(lanes.bit_length() - 1):
            pairs = [(rows[i], rows[i + lanes // 2]) for i in range(lanes // 2)]
            rows = []
            for first, second in pairs:
                rows.append(_interleave(builder, first, second, 0, lanes))
                rows.append(_interleave(builder, first, second, lanes // 2, lanes))
        for c, column in enumerate(rows):
            builder.store(column, at(target_ptr, t0, ldt, c), align=size)
        return context.get_dummy_value()

    return signature, codegen


@row_jit
def transpose_into(source, s0, lds, rows, cols, target, t0, ldt):
    """``target.flat[t0 + c * ldt + r] = source.flat[s0 + r * lds + c]`` for ``r < rows``,
    ``c < cols``: a (rows, cols) block of ``source`` transposed into ``target``, both
    C-contiguous, offsets and leading dimensions in elements.

    Square tiles of one vector's lanes go through registers (:func:`_tile`); the
    strips left at the right and bottom edges are copied element by element.
    """
    lanes = VECTOR_BYTES // source.itemsize
    full_rows = rows - rows % lanes
    full_cols = cols - cols % lanes
    for r in range(0, full_rows, lanes):
        for c in range(0, full_cols, lanes):
            _tile(source, s0 + r * lds + c, lds, target, t0 + c * ldt + r, ldt)
    for c in range(full_cols, cols):
        for r in range(rows):
            target.flat[t0 + c * ldt + r] = source.flat[s0 + r * lds + c]
    for c in range(full_cols):
        for r in range(full_rows, rows):
            target.flat[t0 + c * ldt + r] = source.flat[s0 + r * lds + c]

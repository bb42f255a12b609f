"""Matrix products shared by every cell: one GEMM before and after each scan.

The scans run only the recurrent product inside the time loop. Everything that
can be batched over time happens here, as single BLAS calls over all ``T * B``
rows. Every product goes through numba's ``np.dot`` (SciPy's BLAS), the same
BLAS the scans use, so one BLAS thread pool serves the whole computation:
alternating between NumPy's and SciPy's OpenBLAS pools on a small machine
makes each wait for the other's spinning threads (measured 2x per GEMM here).
"""

import functools
import math
import threading

import numpy as np

from ... import _memory, config
from ...cells.guard import guard_row
from ._blas import gemm
from ._gemm import outer_parts, split_outer_product_add, split_panel_product_add, split_project
from ._simd import FUSED_OUTER_BYTES, OUTER_PASS, VECTOR_BYTES
from ._strips import joined_panel, packed_panel, strip_product, strip_product_add
from ._jit import inline_jit, row_jit, scan_jit

_thread_scratch = threading.local()


def scratch(name, shape, dtype):
    """A per-thread work array, reused from call to call (its contents are garbage).

    Large temporaries that never outlive one forward or backward call (the
    input projection, the pre-activation gradients) come from here: a fresh
    multi-megabyte ``np.empty`` costs a page fault per 4 KiB on first touch,
    which measured more than the GEMM that fills it. Each thread keeps its own
    buffers, so concurrent calls from several threads never share one.
    """
    buffers = getattr(_thread_scratch, "buffers", None)
    if buffers is None:
        buffers = _thread_scratch.buffers = {}
    dtype = np.dtype(dtype)
    size = math.prod(map(int, shape))
    buffer = buffers.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = buffers[(name, dtype)] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


@scan_jit
def _project(x_rows, weight_ih, bias, out):
    np.dot(x_rows, weight_ih.T, out)
    if bias.shape[0] > 0:
        for row in range(out.shape[0]):
            for col in range(out.shape[1]):
                out[row, col] += bias[col]


@scan_jit
def _outer_add(grad, d_rows, in_rows, g0, g1):
    gemm(True, d_rows, g0, False, in_rows, 0, g1 - g0, grad.shape[1], d_rows.shape[0], 1.0,
         grad, g0 * grad.shape[1])


@scan_jit
def _dot_add(out, a, b):
    gemm(False, a, 0, False, b, 0, out.shape[0], out.shape[1], a.shape[1], 1.0, out, 0)


def is_tokens(x):
    """Whether a scan input holds token ids, shape (T, B, 1) int64 (one-hot input)."""
    return x.dtype.kind == "i"


@scan_jit
def _token_table(weight_ih, bias, table):
    gates, vocab = weight_ih.shape
    has_bias = bias.shape[0] > 0
    for g in range(gates):
        for v in range(vocab):
            table[v, g] = weight_ih[g, v] + bias[g] if has_bias else weight_ih[g, v]


def token_table(weight_ih, bias):
    """``W_ih^T + bias`` (V, G): row ``v`` is the input projection of token ``v``."""
    table = np.empty(weight_ih.shape[::-1], weight_ih.dtype)
    _token_table(weight_ih, np.empty(0, weight_ih.dtype) if bias is None else bias, table)
    return table


@functools.lru_cache(maxsize=64)
def row_index(steps, batch):
    """``arange(steps * batch).reshape(steps, batch)``: the rows of a (T*B, G) array."""
    index = np.arange(steps * batch, dtype=np.int64).reshape(steps, batch)
    index.flags.writeable = False
    return index


@functools.lru_cache(maxsize=64)
def zero_index(steps, batch):
    """A (steps, batch) int64 array of zeros: every step and sequence reading row 0."""
    index = np.zeros((steps, batch), dtype=np.int64)
    index.flags.writeable = False
    return index


@row_jit
def join_rows(x_t, h, joined):
    """``joined[b] = [1, x_t[b], h[b]]`` for every row; its first column already holds 1.

    The rows an LSTM step multiplies by ``[bias; W_ih.T; W_hh.T]`` in one product.
    Unsigned offsets: no negative-index wraparound per element, so the copies are
    vectorised.
    """
    inputs, out = np.uint64(x_t.shape[1]), np.uint64(h.shape[1])
    one = np.uint64(1)
    for b in range(joined.shape[0]):
        for q in range(inputs):
            joined[b, one + q] = x_t[b, q]
        for q in range(out):
            joined[b, one + inputs + q] = h[b, q]


def input_in_scan(x, weight_ih):
    """Whether the scan computes the dense input's product in each step: a batch
    of at least 8 sequences (one full row tile; with fewer, the per-step calls
    cost more than writing the small projection: (200, 1, 8, 32) forward 0.19
    against 0.10 ms) and a narrow input (:data:`fastrnn.config.LSTM_INPUT_IN_SCAN`
    features) or a ``W_ih`` of at most
    :data:`~fastrnn.config.LSTM_INPUT_IN_SCAN_BYTES`, whose panel then stays in
    a core's L2 cache next to ``W_hh``'s.

    Measured in one process, alternating, float32, two threads, forward
    (forward+backward), ms, in the step against projected first:
    (100, 64, 128, 256) 29.3-29.9 against 31.4-33.2 (75-79 against 77-87),
    (100, 64, 256, 256) 36.2-37.5 against 38.4-40.0, (35, 32, 128, 256)
    5.1-5.4 against 5.4-5.6 (13.4-13.9 against 14.3-15.1), both ways alike at
    (50, 128, 256, 512) (2 MiB), slower at (100, 128, 512, 512) (8 MiB):
    294-408 against 275-287.
    """
    if x.shape[1] < 8:
        return False
    return (x.shape[2] <= config.LSTM_INPUT_IN_SCAN
            or weight_ih.nbytes <= config.LSTM_INPUT_IN_SCAN_BYTES)


@inline_jit
def joined_buffer(rows, x, out, dtype):
    """The rows of :func:`join_rows` for ``rows`` sequences (ones; none when ``x`` has no
    features: the step then starts from an input projection)."""
    inputs = x.shape[2]
    return np.ones((rows, 1 + inputs + out if inputs > 0 else 0), dtype)


@inline_jit
def step_sums(xproj, x, t, b0, b1, h_prev, panel, joined, sums):
    """A step's pre-activations for the sequences ``b0:b1``, (rows, G): returns ``sums``
    or the rows ``xproj[t, b0:b1]``, whichever now holds them.

    With features in ``x`` (T, B, I): ``[1, x_t, h_{t-1}] @ panel`` into ``sums``,
    ``panel`` the packed ``[bias; W_ih^T; W_hh^T]`` (:func:`~._strips.joined_panel`);
    otherwise ``h_{t-1} @ panel`` added in place to the rows ``xproj[t, b0:b1]`` of
    the input projection (the scan's own scratch, read by no one after this
    step), ``panel`` then ``W_hh^T``. Either way the sums run bias (or projection)
    first, then the input's terms, then the state's. In place, no copy of the
    projection's rows into ``sums`` first: (200, 1, 8, 32) LSTM inference 45 of
    350 ns a step.
    """
    if x.shape[2] > 0:
        join_rows(x[t, b0:b1], h_prev, joined)
        strip_product(joined, panel, sums.shape[1], sums, 0)
        return sums
    rows = xproj[t, b0:b1]
    strip_product_add(h_prev, panel, rows.shape[1], rows, 0)
    return rows


def scan_input(x, weight_ih, bias, blocks):
    """``(xproj, x_in_scan)``: how a batch-split scan gets its input.

    A dense input passing :func:`input_in_scan`: no projection (no columns) and
    ``x`` itself, its product computed in each step. Otherwise (tokens, a wide
    input): the input projection (:func:`input_projection`) and an ``x`` without
    features.
    """
    steps, batch = x.shape[0], x.shape[1]
    no_columns = np.empty((steps, batch, 0), weight_ih.dtype)
    if not is_tokens(x) and input_in_scan(x, weight_ih):
        return no_columns, x
    return input_projection(x, weight_ih, bias, split_kernel(blocks)), no_columns


def scan_inputs(x, weight_ih, weight_hh, bias, blocks):
    """``(xproj, x_in_scan, panel)`` for a batch-split scan's :func:`step_sums`: those of
    :func:`scan_input` and the panel of :func:`~._strips.joined_panel` when the input's
    product is computed in the step, else the panel of ``W_hh.T``."""
    xproj, x_in_scan = scan_input(x, weight_ih, bias, blocks)
    if x_in_scan.shape[2] > 0:
        return xproj, x_in_scan, joined_panel(bias, weight_ih, weight_hh)
    return xproj, x_in_scan, weight_panel(weight_hh, transpose=True)


@scan_jit
def _gather_rows(ids, table, out):
    for r in range(ids.shape[0]):
        row, source = out[r], table[ids[r]]
        for g in range(row.shape[0]):
            row[g] = source[g]


@scan_jit
def _gather_columns(ids, weight_ih, bias, out):
    """``out[r] = weight_ih[:, ids[r]] + bias``, read from the columns in place."""
    gates = weight_ih.shape[0]
    has_bias = bias.shape[0] > 0
    for r in range(ids.shape[0]):
        column = ids[r]
        for g in range(gates):
            out[r, g] = weight_ih[g, column] + bias[g] if has_bias else weight_ih[g, column]


def _gather_projection(ids, weight_ih, bias, out):
    """The input projection of one-hot rows: through :func:`token_table` (contiguous
    row copies) when the vocabulary is smaller than the number of rows, else
    straight from the columns of ``weight_ih``."""
    if weight_ih.shape[1] <= ids.shape[0]:
        _gather_rows(ids, token_table(weight_ih, bias), out)
    else:
        _gather_columns(ids, weight_ih, bias, out)


@scan_jit
def _scatter_columns(ids, d_pre_rows, grad_weight_ih, columns):
    """``grad_weight_ih[:, ids[r]] += d_pre_rows[r]`` in row order (deterministic).

    The sums are gathered per token in ``columns`` (V, G), contiguous, then
    added to the (G, V) gradient once.
    """
    columns[...] = 0.0
    for r in range(ids.shape[0]):
        target = columns[ids[r]]
        source = d_pre_rows[r]
        for g in range(source.shape[0]):
            target[g] += source[g]
    for v in range(columns.shape[0]):
        for g in range(columns.shape[1]):
            grad_weight_ih[g, v] += columns[v, g]


def input_projection(x, weight_ih, bias, kernel=None):
    """Pre-activations from the input for all steps: ``x @ W_ih^T + bias``.

    Parameters
    ----------
    x : ndarray, shape (T, B, I), C-contiguous
        Or token ids of shape (T, B, 1), int64 (:func:`is_tokens`): the input
        is then one-hot and the product a gather of columns of ``W_ih``; no
        one-hot matrix is built.
    weight_ih : ndarray, shape (G, I), C-contiguous
    bias : ndarray of shape (G,) or None
    kernel : callable, optional
        ``kernel(x_rows, weight_ih, bias, out)`` computing the product (default
        one BLAS call; :func:`~._gemm.split_project` splits it across threads).

    Returns
    -------
    ndarray, shape (T, B, G), C-contiguous
    """
    steps, batch, features = x.shape
    out = scratch("input_projection", (steps * batch, weight_ih.shape[0]), weight_ih.dtype)
    if bias is None:
        bias = np.empty(0, weight_ih.dtype)
    if is_tokens(x):
        _gather_projection(x.reshape(-1), weight_ih, bias, out)
    else:
        (kernel or _project)(x.reshape(steps * batch, features), weight_ih, bias, out)
    return out.reshape(steps, batch, -1)


def _rows(array):
    """A (T, B, F) array as C-contiguous (T*B, F) rows."""
    return np.ascontiguousarray(array).reshape(-1, array.shape[-1])


def accumulate_outer(grad, d_pre, inputs, split=False, more=None, rows=None):
    """``grad += sum_t d_pre[t]^T inputs[t]`` as one GEMM over all steps.

    With ``split``, on numba's threads (:mod:`._threads`):
    :func:`~._simd.outer_product_add`, which reads ``d_pre`` transposed where
    it lies, in :data:`~._gemm.SPLIT` blocks of rows. Two threads, float32,
    GFLOP/s against OpenBLAS split the same way: 210 against 195 for the d2l
    LSTM's ``grad W_hh`` (1120 terms, 1024 x 256), 213 against 130 for its
    ``grad W_ih`` (28 columns, padded to 32), 202 against 138 for the long
    shape's (32000 terms, 512 x 128), equal at (100, 128, 512, 512); float64
    within 10% either way. Its rounding error equals BLAS's in float32 (5e-7
    relative) and is 1e-15 against 3e-16 in float64. Without ``split``: one BLAS
    call on BLAS's threads.

    ``more``, a pair ``(more_grad, more_inputs)``, adds a second gradient of the
    same ``d_pre`` (``W_hh``'s beside ``W_ih``'s); with ``split`` both are summed
    in one sweep over ``d_pre`` when their inputs are narrow enough
    (:data:`~._simd.FUSED_OUTER_BYTES`). No bit depends on that.

    ``rows``, a pair ``(g0, g1)``, updates only the gradients' rows ``g0:g1``,
    from ``d_pre``'s columns ``g0:g1`` read in place (the GRU's ``W_hh`` r and z
    rows from the input side's gradient). An element's bits do not depend on
    the rows a call takes.
    """
    d_rows = _rows(d_pre)
    g0, g1 = (0, grad.shape[0]) if rows is None else rows
    pairs = [(grad, _rows(inputs))] + ([] if more is None else [(more[0], _rows(more[1]))])
    if not split:
        for target, in_rows in pairs:
            _outer_add(target, d_rows, in_rows, g0, g1)
        return
    columns = sum(in_rows.shape[1] for _, in_rows in pairs)
    if len(pairs) == 2 and OUTER_PASS * columns * d_rows.itemsize > FUSED_OUTER_BYTES:
        sweeps = [pairs[:1], pairs[1:]]
    else:
        sweeps = [pairs]
    no_second = (np.empty((grad.shape[0], 0), grad.dtype),   # a pair without columns
                 np.empty((d_rows.shape[0], 0), grad.dtype))
    for sweep in sweeps:
        if len(sweep) == 1:
            sweep = sweep + [no_second]
        _add_on_whole_vectors(split_outer_product_add, d_rows, *sweep, last=(g0, g1, outer_parts()))


def _add_on_whole_vectors(kernel, a, *pairs, last=()):
    """``kernel(out, a, b, out2, b2, ..., *last)`` (products added to each ``out`` by the
    register tiles) for the ``(out, b)`` pairs, every ``out`` and ``b`` given whole
    vectors of columns (:func:`_whole_vectors`); a padded ``out`` is copied back."""
    padded = [(_whole_vectors(out), _whole_vectors(b)) for out, b in pairs]
    (first, first_b), rest = padded[0], [array for pair in padded[1:] for array in pair]
    kernel(first, a, first_b, *rest, *last)
    for (out, _), (target, _) in zip(pairs, padded):
        if target is not out:
            out[...] = target[:, :out.shape[1]]


def _whole_vectors(matrix):
    """``matrix`` (R, C) itself when it is C-contiguous and its rows are whole vectors of
    the register tiles (:data:`~._simd.VECTOR_BYTES`), else a copy padded with zero
    columns to the next whole vector."""
    lanes = VECTOR_BYTES // matrix.itemsize
    rows, cols = matrix.shape
    if cols % lanes == 0 and matrix.flags.c_contiguous:
        return matrix
    padded = np.zeros((rows, -(-cols // lanes) * lanes), matrix.dtype)
    padded[:, :cols] = matrix
    return padded


def accumulate_product(out, a, b, split=False):
    """``out += a @ b`` over rows (``out`` C-contiguous, ``a`` of shape (..., K),
    ``b`` (K, N)); ``split`` as in :func:`accumulate_outer`.

    On numba's threads: :func:`~._gemm.split_panel_product_add` (``b`` and ``out``
    padded to whole vectors when needed). Two threads, float32, against
    OpenBLAS split the same way (ms): ``dx`` of the long LSTM shape (32000 x 512
    by 512 x 32) 6.3 against 10.3, of the medium one (6400 x 1024 by 1024 x
    128) 7.9 against 9.5, at the d2l shape (1120 x 1024 by 1024 x 28, padded to
    32) 0.32 against 0.41; 127 against 132 at (100, 128, 512, 512). Its sums run
    in order, so their rounding error is about twice BLAS's (1e-6 against 5e-7
    relative in float32).
    """
    out_rows, a_rows = _rows(out), _rows(a)
    if not split:
        _dot_add(out_rows, a_rows, b)
        return
    _add_on_whole_vectors(split_panel_product_add, a_rows, (out_rows, b))


def accumulate_input_grads(d_pre, x, weight_ih, grad_weight_ih, dx, split=False,
                           recurrent=None):
    """Add the input-side gradients of one scan.

    ``grad_weight_ih += sum_t d_pre[t]^T x[t]`` and ``dx += d_pre @ W_ih``, each
    as one GEMM over all steps. For token input (:func:`is_tokens`) the first
    is a scatter-add into the tokens' columns and there is no ``dx``.

    Parameters
    ----------
    d_pre : ndarray, shape (T, B, G)
        Gradient with respect to the input pre-activations.
    x : ndarray, shape (T, B, I), or token ids (T, B, 1)
    weight_ih, grad_weight_ih : ndarray, shape (G, I)
    dx : ndarray, shape (T, B, I), C-contiguous, or None
        Updated in place (ignored for tokens); None: no input gradient.
    split : bool
        Run the GEMMs split on numba's threads (:func:`accumulate_outer`).
    recurrent : tuple of ndarray, optional
        ``(grad_weight_hh, states)``: also ``grad_weight_hh += sum_t d_pre[t]^T
        states[t]``, in the same sweep as ``grad_weight_ih`` where it can
        (:func:`accumulate_outer`'s ``more``).

    Returns
    -------
    ndarray of shape (V, G) or None
        For tokens, the sums of ``d_pre`` per token (see :func:`bias_gradient`).
    """
    if is_tokens(x):
        if recurrent is not None:
            accumulate_outer(recurrent[0], d_pre, recurrent[1], split)
        return accumulate_token_grads(grad_weight_ih, d_pre, x)
    accumulate_outer(grad_weight_ih, d_pre, x, split, recurrent)
    if dx is not None:
        accumulate_product(dx, d_pre, weight_ih, split)
    return None


def run_scan(blocks, scan_blocks, scan_rows, batch, *args):
    """Run a scan over all ``batch`` sequences: split into ``blocks`` blocks on
    numba's threads (``scan_blocks(*args, blocks)``) or, with one block, here
    (``scan_rows(*args, 0, batch)``)."""
    if blocks > 1:
        scan_blocks(*args, blocks)
    else:
        scan_rows(*args, 0, batch)


def split_kernel(blocks):
    """The input-projection kernel of a scan split into ``blocks`` (None: one BLAS call)."""
    return split_project if blocks > 1 else None


def accumulate_token_grads(grad_weight_ih, d_pre, tokens):
    """``grad_weight_ih[:, v] += sum of d_pre over the steps whose token is v``.

    Returns those sums, (V, G): their column sums are the bias gradient.
    """
    columns = scratch("token_columns", grad_weight_ih.shape[::-1], grad_weight_ih.dtype)
    _scatter_columns(tokens.reshape(-1), _rows(d_pre), grad_weight_ih, columns)
    return columns


def bias_gradient(d_pre, token_sums=None):
    """The bias gradient, ``d_pre`` summed over time and batch; from the (V, G) sums
    per token when the input was tokens (a pass over V rows instead of T * B)."""
    return column_sums(d_pre) if token_sums is None else token_sums.sum(axis=0)


@scan_jit
def _merge_output_grad(dh, dy, t, col0, lengths, b0):
    rows, width = dh.shape
    for i in range(rows):
        if t < lengths[b0 + i]:
            for j in range(width):
                dh[i, j] += dy[t, b0 + i, col0 + j]


_guard_row = inline_jit(guard_row)


@inline_jit
def guard_step_error(dh, t, lengths, clip, norms, b0):
    """Measure, and clip, the error ``dL/dh_t`` of each sequence at step ``t``.

    ``dh`` (R, P) holds the whole gradient reaching ``h_t`` (from the step
    after it and from the output) of the sequences ``b0:b0 + R``. Each valid
    row's 2-norm goes to ``norms[t, b]`` when ``norms`` is not empty (padding
    steps keep 0); with ``clip > 0`` a row longer than ``clip`` is scaled to
    length ``clip`` before it flows on, so the error is bounded where it
    arises, at every step (:func:`fastrnn.cells.guard.guard_row`, the CUDA
    kernels' source too).
    """
    record = norms.shape[0] > 0
    for i in range(dh.shape[0]):
        if t < lengths[b0 + i]:
            _guard_row(dh[i], t, b0 + i, clip, norms, record)


@inline_jit
def guarded_output_grad(dh, dy, t, col0, lengths, clip, norms, zeros, b0):
    """The output gradient a backward step adds to ``dh``, after the error guard.

    ``dh`` (R, P) holds the rows of the sequences ``b0:b0 + R``. Without a
    guard (``clip <= 0`` and empty ``norms``) the result is ``dy[t]`` itself.
    With one, ``dy[t]`` is merged into ``dh`` first so that
    :func:`guard_step_error` sees the whole ``dL/dh_t``, and the step adds
    ``zeros`` (B, D*P) instead. Either way it is indexed by sequence ``b``.
    """
    if clip <= 0.0 and norms.shape[0] == 0:
        return dy[t]
    _merge_output_grad(dh, dy, t, col0, lengths, b0)
    guard_step_error(dh, t, lengths, clip, norms, b0)
    return zeros


def error_guard(clip, norms):
    """Arguments of the backward scans for the error guard: ``(clip, norms)``.

    ``clip`` None or 0 turns clipping off; ``norms`` None records nothing.
    """
    return (0.0 if clip is None else float(clip),
            np.zeros((0, 0), np.float64) if norms is None else norms)


def block_sums(sums, blocks):
    """The sums of a scan's :func:`~._gemm.batch_block` blocks of sequences, added in
    block order: each block's scan leaves its own in row ``b0`` (its first
    sequence) of ``sums`` (B, F), so no two threads write one row.

    A backward scan sums the bias gradient this way, each step's rows while
    they are in cache, rather than in a pass over the whole (T, B, G) gradient
    afterwards, which reads it back from memory (one thread: such a pass took
    1.3-1.9 ms over the GRU (100, 64, 128, 256)'s (6400, 768) gradient and 5.9 ms
    over the LSTM (2000, 16, 32, 128)'s; the running sums cost 0.22 ms over 6400
    rows of 512 in isolation).
    The order of the sums depends on the block count, which depends on the
    shapes only, never on the number of threads.
    """
    batch = sums.shape[0]
    total = np.zeros(sums.shape[1], sums.dtype)
    for part in range(blocks):
        b0, b1 = part * batch // blocks, (part + 1) * batch // blocks   # as batch_block
        if b1 > b0:
            total += sums[b0]
    return total


def column_sums(d_pre):
    """Sum of a (T, B, G) gradient over time and batch: the bias gradient."""
    return d_pre.reshape(-1, d_pre.shape[-1]).sum(axis=0)


def tape_length(steps, keep_tape):
    """Leading size of tape arrays: every step when training, one slot otherwise."""
    return steps if keep_tape else 1


def state_buffer(initial, steps, keep_tape, reverse):
    """A time-aligned buffer of states, holding ``initial`` where the scan starts.

    With a tape, slot ``t`` holds the state entering time ``t`` of a forward
    scan (slot 0 is the initial state) and slot ``t + 1`` the state entering
    time ``t`` of a reverse scan (slot ``T`` is the initial state), so the
    states entering every step are one contiguous slice either way (see
    :func:`entering_states`). Without a tape two slots alternate.
    """
    slots, first = state_slots(steps, keep_tape, reverse)
    buffer = _memory.empty((slots,) + initial.shape, initial.dtype)
    buffer[first] = initial
    return buffer


def state_slots(steps, keep_tape, reverse):
    """``(slots, first)``: the size of a :func:`state_buffer` and the slot of its initial state."""
    return (steps + 1 if keep_tape else 2), (steps if keep_tape and reverse else 0)


def entering_states(buffer, reverse):
    """The (T, B, F) slice of a taped state buffer: the state entering each step."""
    return buffer[1:] if reverse else buffer[:-1]


def final_slot(steps, keep_tape, reverse):
    """Index of the final state in a buffer from :func:`state_buffer`."""
    if keep_tape:
        return 0 if reverse else steps
    return steps % 2


@inline_jit
def step_slots(s, steps, reverse, keep):
    """``(t, before, after)`` at scan step ``s``: the time index, and the slots
    of the state entering and leaving it in a :func:`state_buffer`."""
    t = steps - 1 - s if reverse else s
    if not keep:
        return t, s % 2, (s + 1) % 2
    if reverse:
        return t, t + 1, t
    return t, t, t + 1


def weight_panel(matrix, transpose=False):
    """``matrix`` (K, N), or ``matrix.T`` for a (N, K) ``matrix``, as the panel of a
    recurrent product: packed in strips (:func:`~._strips.packed_panel`)."""
    return packed_panel(matrix, transpose)


@inline_jit
def recurrent_product(h, panel, product):
    """``product = h @ W`` for a (B, K) state, a (K, >= N) panel of weights ``W``
    (:func:`weight_panel`) and a (B, N) ``product``.

    :func:`~._strips.strip_product`, written into ``product`` in place: the
    weights' (K, N) orientation is ``W_hh.T`` for a forward step and ``W_hh``
    itself for a backward one. Against OpenBLAS (``W @ h.T`` and a transpose,
    its fastest orientation at these shapes), one core, float32: 1.2-1.7x as
    fast from 8 to 64 rows, 256-264 against 150-200 GFLOP/s while the panel
    fits the core's L2 cache, and equal beyond it (64 x 512 by 512 x 2048);
    float64 1.1-2x.
    """
    strip_product(h, panel, product.shape[1], product, 0)


@row_jit
def add_to(total, row):
    """``total += row`` for 1-D rows: a running sum (out of line, so that it vectorises;
    :func:`add_into` with ``out`` the same array as ``a`` did not, 4x slower)."""
    for j in range(total.shape[0]):
        total[j] += row[j]


@row_jit
def add_into(a, b, out):
    """``out[:] = a + b`` for 1-D rows (kept out of line so that it vectorises)."""
    for j in range(out.shape[0]):
        out[j] = a[j] + b[j]

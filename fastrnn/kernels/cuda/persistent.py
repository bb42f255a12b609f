"""Persistent CUDA scans: the whole time loop of one direction in one kernel launch.

The per-step scans of :mod:`.rnn`, :mod:`.gru` and :mod:`.lstm` launch a GEMM
and one or more pointwise kernels at every step, so a small batch is bound by
launch latency. The kernels here run all steps in one launch instead, in the
spirit of the persistent RNN kernels of Diamos et al. (2016), but without any
grid-wide synchronisation: the sequences of a batch never interact, so each
thread block owns :data:`ROWS` rows of the batch and runs the whole time loop
for them, with only ``cuda.syncthreads()`` between the phases of a step.

Inside a forward step, each thread takes elements ``(row, unit)`` of its
block's rows in turn and computes that unit's recurrent pre-activations as dot
products (``k`` in order, as the tiled GEMM sums them) of the row's
``h_{t-1}``, held in shared memory (two buffers, read one, write the other),
with columns of ``W_hh^T``; then it runs the same cell function of
:mod:`fastrnn.cells` the per-step kernels run (:func:`~._jit.point_device`)
and writes ``h_t`` to shared memory, the state buffer and ``y``. A second
product inside the step (the reset-before GRU's ``W_hn (r * h)``, the LSTM
projection ``W_hr m``) is one more phase after a ``syncthreads``, its operand
in shared memory too. Backward mirrors this with ``W_hh`` as it is: the
pre-activation gradients of a step, then ``dh_{t-1} = dG_t W_hh`` per row.

The recurrent weights a kernel reads (``W_hh`` transposed in forward, as it is
in backward, and ``W_hn``/``W_hr`` where they apply) come packed in one flat
array (:func:`_packed`). When they fit :data:`SHARED_WEIGHTS`, each block
copies them once per launch into a static shared array and reads them there at
every step (the ``stage`` argument); otherwise it reads them from global
memory, where on a GPU they should stay L2-resident. Neighbouring threads read
neighbouring addresses either way.

The tape is the per-step scans' (same buffers, same layout), so either
backward runs after either forward; the weight gradients stay the big GEMMs
after the scan. Sums run in the same order as the per-step path, so in the
simulator both give the same bits.

Backward with the error guard (``error_clip``/``error_norms``) runs separate
kernels, ``*_backward_guarded``: their row norms are float64 by design (as on
the CPU), which the plain kernels keep out of their float32 arithmetic. At
each step one thread per row measures the whole ``dL/dh_t`` (in shared memory,
or on the ``dh`` tape with an LSTM projection), records the norm and clips the
row, as :func:`._common.OutputGrad.total` does between per-step kernels.

What runs here (see :func:`forward_enabled`, :func:`backward_enabled`): every
cell and variant the per-step scans handle, forward and backward, when the
batch has at most :data:`fastrnn.config.CUDA_PERSISTENT_MAX_BATCH` sequences
and a row of the state fits :data:`SHARED_STATE`.
"""

from numba import cuda

from ... import config
from ...cells.gru import (gru_backward_point, gru_gates_point, gru_output_point,
                          gru_reset_before_point)
from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ...cells.rnn import rnn_backward_point, rnn_forward_point
from ..cpu._common import step_slots
from ._arrays import assign, flat, swap01
from ._common import guard_row
from ._jit import kernel, point_device

#: Elements of one shared-memory state buffer of a block: ``rows x width`` must
#: fit. A compile-time constant (static shared arrays; the simulator has no
#: dynamic ones): each kernel holds one to three such buffers.
SHARED_STATE = 1024
#: Two state buffers back to back (``h_{t-1}`` and ``h_t``, swapped each step).
_SHARED_PAIR = 2 * SHARED_STATE
#: Elements of the shared array each block stages its recurrent weights in,
#: when they fit (:func:`_stages`). Static, in the kernel's float type, beside
#: up to three state buffers: in float64 the largest kernels (GRU, LSTM
#: forward) then hold (3 * 1024 + 3072) * 8 bytes = 48 KiB, the most static
#: shared memory a block may have (checked by ``tests/test_cuda_ptx.py``);
#: float32 kernels use half that. 3072 holds ``W_hh`` of a GRU up to
#: ``hidden_size`` 32, an RNN up to 55, an LSTM up to 27 (4 * 27 * 27).
SHARED_WEIGHTS = 3072

#: Batch rows per thread block (fewer when ``rows x width`` would not fit
#: :data:`SHARED_STATE`). Read at every launch; tests lower it.
ROWS = 2
#: Most threads per block. Read at every launch; tests lower it so that each
#: thread handles several elements.
THREADS = 128

_device = cuda.jit(device=True)
_step_slots = _device(step_slots.py_func)
_rnn_forward_point = point_device(rnn_forward_point)
_rnn_backward_point = point_device(rnn_backward_point)
_gru_gates_point = point_device(gru_gates_point)
_gru_output_point = point_device(gru_output_point)
_gru_backward_point = point_device(gru_backward_point)
_gru_reset_before_point = point_device(gru_reset_before_point)
_lstm_forward_point = point_device(lstm_forward_point)
_lstm_backward_point = point_device(lstm_backward_point)


# ------------------------------------------------------------------ dispatch
def forward_enabled(batch, *widths):
    """Whether a forward scan of ``batch`` sequences, whose per-row state buffers are
    ``widths`` wide, runs persistent (see :mod:`fastrnn.config`)."""
    return (config.CUDA_PERSISTENT and 0 < batch <= config.CUDA_PERSISTENT_MAX_BATCH
            and max(widths) <= SHARED_STATE)


def backward_enabled(batch, *widths):
    """Like :func:`forward_enabled`, for a backward scan (with or without the error
    guard, which has kernels of its own)."""
    return forward_enabled(batch, *widths)


def _stages(weights):
    """Whether a kernel stages its packed ``weights`` in shared memory: when they fit
    :data:`SHARED_WEIGHTS` (read at every launch)."""
    return weights.size <= SHARED_WEIGHTS


def _launch(kernel_, batch, width, *args):
    """Launch ``kernel_`` over ``batch`` rows, one block per :data:`ROWS` of them (fewer
    when ``ROWS`` rows of ``width`` elements would overflow a shared buffer), at most
    :data:`THREADS` threads a block; the rows per block follow ``args``."""
    rows = max(1, min(ROWS, SHARED_STATE // max(width, 1)))
    threads = max(1, min(THREADS, -(-rows * width // 32) * 32))
    kernel_.launch(-(-batch // rows), threads, *args, rows)


def _launch_backward(kernels, output, batch, width, *args):
    """Launch the plain backward kernel of the pair ``kernels`` or, when ``output`` (an
    :class:`~._common.OutputGrad`) guards the error, the guarded one with its clip
    value, its device norms and whether to record them."""
    plain, guarded = kernels
    if output.guarded:
        _launch(guarded, batch, width, *args, output.clip, output.norms, output.record)
    else:
        _launch(plain, batch, width, *args)


def _placeholder(dtype):
    """A (1, 1, 1) device array standing for an absent array argument."""
    return cuda.device_array((1, 1, 1), dtype)


def _transposed(matrix):
    """A C-contiguous device copy of a 2-D device matrix's transpose."""
    rows, cols = matrix.shape
    return swap01(matrix.reshape(rows, cols, 1)).reshape(cols, rows)


def _packed(*matrices):
    """The C-contiguous device matrices, row-major, one after another in one flat device
    array (a view when there is one): the weights a kernel reads, and stages."""
    if len(matrices) == 1:
        return flat(matrices[0])
    out = cuda.device_array(sum(matrix.size for matrix in matrices), matrices[0].dtype)
    start = 0
    for matrix in matrices:
        assign(out[start:start + matrix.size], flat(matrix))
        start += matrix.size
    return out


#: Backward kernels' extra arguments with the error guard: ``error_clip`` (0 for
#: none), the norms (T, B) on the device, and whether to record them.
_GUARD_ARGS = "float64, float64[:, ::1], boolean, "


def _guarded(template):
    """A backward kernel's signature with the guard's arguments before ``rows``."""
    assert template.endswith("int64)")
    return template[:-len("int64)")] + _GUARD_ARGS + "int64)"


# ------------------------------------------------------------ device helpers
@_device
def _dot(vector, start, weights, first, stride, depth, zero):
    """``sum_k vector[start + k] * weights[first + k * stride]`` for ``k < depth``, in
    order: a column of a row-major matrix packed in ``weights``."""
    total = zero
    for k in range(depth):
        total += vector[start + k] * weights[first + k * stride]
    return total


@_device
def _on_chip(buffer, weights, stage):
    """Where a kernel reads its packed ``weights``: the global array itself or, with
    ``stage``, ``buffer`` (shared memory, large enough) after copying them into it.
    The block synchronises before reading the copy."""
    if not stage:
        return weights
    for e in range(cuda.threadIdx.x, weights.shape[0], cuda.blockDim.x):
        buffer[e] = weights[e]
    return buffer


@_device
def _block_rows(rows, batch):
    """``(first row, rows)`` of the batch that this thread block owns."""
    first = cuda.blockIdx.x * rows
    return first, min(rows, batch - first)


@_device
def _load_rows(shared, states, slot, first, count, width):
    """Copy this block's rows of ``states[slot]`` into ``shared`` (row-major)."""
    for e in range(cuda.threadIdx.x, count * width, cuda.blockDim.x):
        r = e // width
        shared[e] = states[slot, first + r, e - r * width]


@_device
def _store_rows(shared, matrix, first, count, width):
    """Copy ``shared`` (this block's rows, row-major) into ``matrix[first:first + count]``."""
    for e in range(cuda.threadIdx.x, count * width, cuda.blockDim.x):
        r = e // width
        matrix[first + r, e - r * width] = shared[e]


@_device
def _load_matrix_rows(shared, matrix, first, count, width):
    """Copy ``matrix[first:first + count]`` into ``shared`` (row-major)."""
    for e in range(cuda.threadIdx.x, count * width, cuda.blockDim.x):
        r = e // width
        shared[e] = matrix[first + r, e - r * width]


@_device
def _add_output(dh_sh, dy, t, lengths, first, count):
    """``dh_sh += dy[t]`` on this block's rows still running at step ``t``: the whole
    ``dL/dh_t``. Each thread adds the elements it then reads (the same ones in every
    element loop of a kernel), so no barrier is needed unless others read them."""
    width = dy.shape[2]
    for e in range(cuda.threadIdx.x, count * width, cuda.blockDim.x):
        r = e // width
        b = first + r
        if t < lengths[b]:
            dh_sh[e] = dh_sh[e] + dy[t, b, e - r * width]


@_device
def _guard_shared_rows(dh_sh, width, t, lengths, first, count, clip, norms, record):
    """:func:`~._common.guard_row` on this block's rows of ``dh_sh`` (``width`` each) running at
    step ``t``, one thread a row, between two barriers."""
    cuda.syncthreads()
    for r in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        if t < lengths[first + r]:
            guard_row(dh_sh[r * width:(r + 1) * width], t, first + r, clip, norms, record)
    cuda.syncthreads()


@_device
def _guard_tape_rows(dh_tape, t, lengths, first, count, clip, norms, record):
    """:func:`~._common.guard_row` on this block's rows of ``dh_tape[t]`` running at step ``t``,
    one thread a row, between two barriers."""
    cuda.syncthreads()
    for r in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        if t < lengths[first + r]:
            guard_row(dh_tape[t, first + r], t, first + r, clip, norms, record)
    cuda.syncthreads()


# ------------------------------------------------------------------- forward
@kernel("void({f}[:, :, ::1], {f}[::1], {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], "
        "boolean, boolean, int64, {f}, boolean, int64)")
def _rnn_forward(xproj, weights, hs, y, lengths, reverse, keep_tape, nonlinearity, one, stage,
                 rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, xproj.dtype)
    steps, batch, hidden = xproj.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
    w = _on_chip(w_sh, weights, stage)   # W_hh^T
    _, start, _ = _step_slots(0, steps, reverse, keep_tape)
    _load_rows(h_sh, hs, start, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, _, after = _step_slots(s, steps, reverse, keep_tape)
        cur = (s % 2) * SHARED_STATE
        nxt = SHARED_STATE - cur
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            j = e - r * hidden
            b = first + r
            h = h_sh[cur + e]
            if t < lengths[b]:
                a = xproj[t, b, j] + _dot(h_sh, cur + r * hidden, w, j, hidden, hidden, zero)
                h = _rnn_forward_point(a, nonlinearity, one)
                y[t, b, j] = h
            h_sh[nxt + e] = h
            hs[after, b, j] = h
        cuda.syncthreads()


def rnn_forward(xproj, whh, hs, y, lengths, reverse, keep_tape, nonlinearity, one):
    """The time loop of :func:`fastrnn.kernels.cuda.rnn.forward` in one launch.

    Parameters
    ----------
    xproj : device array, shape (T, B, H)
        Input pre-activations with both biases.
    whh : device array, shape (H, H)
    hs : device array, (T+1 or 2, B, H)
        The state buffer of :func:`~._common.states`, initial state in place;
        filled like the per-step scan fills it.
    y : device array, shape (T, B, H)
        This direction's outputs, written at valid steps.
    lengths : device array of int64, shape (B,)
    reverse, keep_tape : bool
    nonlinearity : int
        :data:`fastrnn.cells.rnn.TANH` or ``RELU``.
    one : float
        1 in the working dtype.
    """
    steps, batch, hidden = xproj.shape
    if steps:
        weights = _packed(_transposed(whh))
        _launch(_rnn_forward, batch, hidden, xproj, weights, hs, y, lengths, reverse,
                keep_tape, nonlinearity, one, _stages(weights))


@kernel("void({f}[:, :, ::1], {f}[::1], {f}[::1], {f}[:, :, ::1], {f}[:, :, ::1], "
        "{f}[:, :, ::1], {f}[:, :, ::1], int64[::1], boolean, boolean, boolean, {f}, boolean, "
        "int64)")
def _gru_forward(xproj, weights, b_hn, hs, gates, q_tape, y, lengths, reverse, keep_tape,
                 reset_after, one, stage, rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    rh_sh = cuda.shared.array(SHARED_STATE, xproj.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, xproj.dtype)
    steps, batch, hidden = xproj.shape[0], hs.shape[1], hs.shape[2]
    first, count = _block_rows(rows, batch)
    zero = one - one
    # W_rec^T (H, rec), then (reset before) W_hn^T (H, H) from element hn.
    rec = 3 * hidden if reset_after else 2 * hidden
    hn = hidden * rec
    w = _on_chip(w_sh, weights, stage)
    _, start, _ = _step_slots(0, steps, reverse, keep_tape)
    _load_rows(h_sh, hs, start, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, _, after = _step_slots(s, steps, reverse, keep_tape)
        k = t if keep_tape else 0
        cur = (s % 2) * SHARED_STATE
        nxt = SHARED_STATE - cur
        # Phase 1: r and z; with the reset after the product, the whole step.
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            j = e - r * hidden
            b = first + r
            h_prev = h_sh[cur + e]
            if t >= lengths[b]:
                h_sh[nxt + e] = h_prev
                hs[after, b, j] = h_prev
                q_tape[k, b, j] = zero
                continue
            row = cur + r * hidden
            reset, update = _gru_gates_point(
                xproj[t, b, j] + _dot(h_sh, row, w, j, rec, hidden, zero),
                xproj[t, b, hidden + j] + _dot(h_sh, row, w, hidden + j, rec, hidden, zero),
                one)
            gates[k, b, j] = reset
            gates[k, b, hidden + j] = update
            if reset_after:
                q = _dot(h_sh, row, w, 2 * hidden + j, rec, hidden, zero) + b_hn[j]
                n, h = _gru_output_point(xproj[t, b, 2 * hidden + j], q, reset, update, h_prev,
                                         True, one)
                gates[k, b, 2 * hidden + j] = n
                q_tape[k, b, j] = q
                y[t, b, j] = h
                h_sh[nxt + e] = h
                hs[after, b, j] = h
            else:
                rh_sh[e] = reset * h_prev
        if not reset_after:
            # Phase 2 (reset before the product): n and h from W_hn (r * h).
            cuda.syncthreads()
            for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
                r = e // hidden
                j = e - r * hidden
                b = first + r
                if t >= lengths[b]:
                    continue
                q = _dot(rh_sh, r * hidden, w, hn + j, hidden, hidden, zero) + b_hn[j]
                n, h = _gru_output_point(xproj[t, b, 2 * hidden + j], q, gates[k, b, j],
                                         gates[k, b, hidden + j], h_sh[cur + e], False, one)
                gates[k, b, 2 * hidden + j] = n
                q_tape[k, b, j] = rh_sh[e]
                y[t, b, j] = h
                h_sh[nxt + e] = h
                hs[after, b, j] = h
        cuda.syncthreads()


def gru_forward(xproj, w_rec, whn, b_hn, hs, gates, q_tape, y, lengths, reverse, keep_tape,
                reset_after, one):
    """The time loop of :func:`fastrnn.kernels.cuda.gru.forward` in one launch.

    Parameters
    ----------
    xproj : device array, shape (T, B, 3H)
        Input pre-activations (with ``b_ih`` and the r, z rows of ``b_hh``).
    w_rec, whn : device arrays
        ``W_hh`` (3H, H) and an empty view (reset after), or its r, z rows
        (2H, H) and its n rows (H, H) (reset before).
    b_hn : device array, shape (H,)
    hs, gates, q_tape : device arrays
        The state buffer (initial state in place) and the tapes of the
        per-step scan, filled as it fills them.
    y : device array, shape (T, B, H)
    lengths : device array of int64, shape (B,)
    reverse, keep_tape, reset_after : bool
    one : float
        1 in the working dtype.
    """
    steps, batch, _ = xproj.shape
    hidden = hs.shape[2]
    if not steps:
        return
    weights = (_packed(_transposed(w_rec)) if reset_after
               else _packed(_transposed(w_rec), _transposed(whn)))
    _launch(_gru_forward, batch, hidden, xproj, weights, b_hn, hs, gates, q_tape, y, lengths,
            reverse, keep_tape, reset_after, one, _stages(weights))


@kernel("void({f}[:, :, ::1], {f}[::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], "
        "{f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], boolean, boolean, "
        "boolean, boolean, {f}, boolean, int64)")
def _lstm_forward(xproj, weights, peep, hs, cs, gates, m_tape, y, lengths, reverse, keep_tape,
                  coupled, project, one, stage, rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    m_sh = cuda.shared.array(SHARED_STATE, xproj.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, xproj.dtype)
    steps, batch, n_gates = xproj.shape
    hidden, out_size = cs.shape[2], hs.shape[2]
    first, count = _block_rows(rows, batch)
    zero = one - one
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    # W_hh^T (P, G), then (projection) W_hr^T (H, P) from element hr.
    hr = out_size * n_gates
    w = _on_chip(w_sh, weights, stage)
    _, start, _ = _step_slots(0, steps, reverse, keep_tape)
    _load_rows(h_sh, hs, start, first, count, out_size)
    cuda.syncthreads()
    for s in range(steps):
        t, before, after = _step_slots(s, steps, reverse, keep_tape)
        k = t if keep_tape else 0
        cur = (s % 2) * SHARED_STATE
        nxt = SHARED_STATE - cur
        # Phase 1: gates, c_t and m_t (which is h_t without a projection).
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            j = e - r * hidden
            b = first + r
            if t >= lengths[b]:
                cs[after, b, j] = cs[before, b, j]
                if project:
                    if keep_tape:
                        m_tape[t, b, j] = zero
                else:
                    h_sh[nxt + e] = h_sh[cur + e]
                    hs[after, b, j] = h_sh[cur + e]
                continue
            row = cur + r * out_size
            a_f = xproj[t, b, off_f + j] + _dot(h_sh, row, w, off_f + j, n_gates, out_size, zero)
            a_g = xproj[t, b, off_g + j] + _dot(h_sh, row, w, off_g + j, n_gates, out_size, zero)
            a_o = xproj[t, b, off_o + j] + _dot(h_sh, row, w, off_o + j, n_gates, out_size, zero)
            a_i = a_f   # ignored when coupled
            if not coupled:
                a_i = xproj[t, b, j] + _dot(h_sh, row, w, j, n_gates, out_size, zero)
            i, f, g, o, c, m = _lstm_forward_point(a_i, a_f, a_g, a_o, cs[before, b, j],
                                                   peep[0, j], peep[1, j], peep[2, j], coupled,
                                                   one)
            if not coupled:
                gates[k, b, j] = i
            gates[k, b, off_f + j] = f
            gates[k, b, off_g + j] = g
            gates[k, b, off_o + j] = o
            cs[after, b, j] = c
            if project:
                m_sh[e] = m
                if keep_tape:
                    m_tape[t, b, j] = m
            else:
                h_sh[nxt + e] = m
                hs[after, b, j] = m
                y[t, b, j] = m
        if project:
            # Phase 2: h_t = W_hr m_t.
            cuda.syncthreads()
            for e in range(cuda.threadIdx.x, count * out_size, cuda.blockDim.x):
                r = e // out_size
                p = e - r * out_size
                b = first + r
                h = h_sh[cur + e]
                if t < lengths[b]:
                    h = _dot(m_sh, r * hidden, w, hr + p, out_size, hidden, zero)
                    y[t, b, p] = h
                h_sh[nxt + e] = h
                hs[after, b, p] = h
        cuda.syncthreads()


def lstm_forward(xproj, whh, whr, peep, hs, cs, gates, m_tape, y, lengths, reverse, keep_tape,
                 coupled, one):
    """The time loop of :func:`fastrnn.kernels.cuda.lstm.forward` in one launch.

    Parameters
    ----------
    xproj : device array, shape (T, B, G)
        Input pre-activations with both biases (G = 4H, or 3H coupled).
    whh : device array, shape (G, P)
    whr : device array of shape (P, H), or None without a projection
    peep : device array, shape (3, H)
        Peephole rows i, f, o (zeros where absent).
    hs, cs : device arrays
        The state buffers, initial states in place.
    gates : device array
        The gate tape, filled as the per-step scan fills it.
    m_tape : device array of shape (T, B, H), or None
        ``m_t`` at valid steps (0 elsewhere), with a projection and a tape.
    y : device array, shape (T, B, P)
    lengths : device array of int64, shape (B,)
    reverse, keep_tape, coupled : bool
    one : float
        1 in the working dtype.
    """
    steps, batch, _ = xproj.shape
    if not steps:
        return
    project = whr is not None
    weights = (_packed(_transposed(whh), _transposed(whr)) if project
               else _packed(_transposed(whh)))
    m_tape = m_tape if m_tape is not None else _placeholder(gates.dtype)
    _launch(_lstm_forward, batch, max(hs.shape[2], cs.shape[2]), xproj, weights, peep, hs, cs,
            gates, m_tape, y, lengths, reverse, keep_tape, coupled, project, one,
            _stages(weights))


# ------------------------------------------------------------------ backward
# Each cell's backward kernel comes in two variants with one step function:
# plain, and ``*_guarded``, which measures and clips ``dL/dh_t`` (the
# ``_guard_*`` helpers, float64) before the step uses it.
@_device
def _rnn_backward_step(dh_sh, hs, w, d_pre, t, after, lengths, first, count, nonlinearity,
                       one):
    """One backward step of this block's rows, ``dL/dh_t`` in ``dh_sh``: ``d_pre[t]``
    (0 at padding), then ``dh_{t-1} = d_pre[t] W_hh`` into ``dh_sh`` (rows running)."""
    hidden = d_pre.shape[2]
    zero = one - one
    for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
        r = e // hidden
        j = e - r * hidden
        b = first + r
        if t < lengths[b]:
            d_pre[t, b, j] = _rnn_backward_point(dh_sh[e], hs[after, b, j], nonlinearity, one)
        else:
            d_pre[t, b, j] = zero
    cuda.syncthreads()
    for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
        r = e // hidden
        b = first + r
        if t < lengths[b]:
            dh_sh[e] = _dot(d_pre[t, b], 0, w, e - r * hidden, hidden, hidden, zero)
    cuda.syncthreads()


_RNN_BACKWARD = ("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[::1], {f}[:, :, ::1], {f}[:, ::1], "
                 "int64[::1], boolean, int64, {f}, boolean, int64)")


@kernel(_RNN_BACKWARD)
def _rnn_backward(dy, hs, weights, d_pre, dh, lengths, reverse, nonlinearity, one, stage, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    w = _on_chip(w_sh, weights, stage)   # W_hh
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, _, after = _step_slots(steps - 1 - s, steps, reverse, True)
        _add_output(dh_sh, dy, t, lengths, first, count)
        _rnn_backward_step(dh_sh, hs, w, d_pre, t, after, lengths, first, count, nonlinearity,
                           one)
    _store_rows(dh_sh, dh, first, count, hidden)


@kernel(_guarded(_RNN_BACKWARD))
def _rnn_backward_guarded(dy, hs, weights, d_pre, dh, lengths, reverse, nonlinearity, one,
                          stage, clip, norms, record, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    w = _on_chip(w_sh, weights, stage)
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, _, after = _step_slots(steps - 1 - s, steps, reverse, True)
        _add_output(dh_sh, dy, t, lengths, first, count)
        _guard_shared_rows(dh_sh, hidden, t, lengths, first, count, clip, norms, record)
        _rnn_backward_step(dh_sh, hs, w, d_pre, t, after, lengths, first, count, nonlinearity,
                           one)
    _store_rows(dh_sh, dh, first, count, hidden)


def rnn_backward(output, hs, whh, d_pre, dh, lengths, reverse, nonlinearity, one):
    """The time loop of :func:`fastrnn.kernels.cuda.rnn.backward` in one launch.

    Parameters
    ----------
    output : :class:`~._common.OutputGrad`
        This direction's output gradients ``output.dy`` (T, B, H) and the
        error guard, if any (its norms are left on the device for
        ``output.finish()``).
    hs : device array, shape (T+1, B, H)
        The forward's state tape.
    whh : device array, shape (H, H)
    d_pre : device array, shape (T, B, H)
        Written: the pre-activation gradients (0 at padding steps).
    dh : device array, shape (B, H)
        ``dL/dh_T`` in, ``dL/dh_0`` out.
    lengths : device array of int64, shape (B,)
    reverse : bool
    nonlinearity : int
    one : float
        1 in the working dtype.
    """
    steps, batch, hidden = output.dy.shape
    if steps:
        weights = _packed(whh)
        _launch_backward((_rnn_backward, _rnn_backward_guarded), output, batch, hidden,
                         output.dy, hs, weights, d_pre, dh, lengths, reverse, nonlinearity, one,
                         _stages(weights))


@_device
def _gru_backward_step(dh_sh, direct_sh, reset_sh, hs, gates, q_tape, w, d_ih, d_hh, t, before,
                       lengths, first, count, reset_after, one):
    """One backward step of this block's rows, ``dL/dh_t`` in ``dh_sh``: ``d_ih[t]``
    (and ``d_hh[t]``, reset after), then ``dh_{t-1}`` into ``dh_sh`` (rows running)."""
    hidden = hs.shape[2]
    zero = one - one
    # W_rec (rec, H), then (reset before) W_hn (H, H) from element hn.
    rec = 3 * hidden if reset_after else 2 * hidden
    hn = rec * hidden
    d_rec = d_hh if reset_after else d_ih   # the rows that multiply W_rec
    # Phase 1: the pointwise backward of every element.
    for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
        r = e // hidden
        j = e - r * hidden
        b = first + r
        if t >= lengths[b]:
            for gate in range(3):
                d_ih[t, b, gate * hidden + j] = zero
                if reset_after:
                    d_hh[t, b, gate * hidden + j] = zero
            continue
        da_r, da_z, da_n, dq, direct = _gru_backward_point(
            dh_sh[e], gates[t, b, j], gates[t, b, hidden + j], gates[t, b, 2 * hidden + j],
            hs[before, b, j], q_tape[t, b, j], reset_after, one)
        d_ih[t, b, j] = da_r
        d_ih[t, b, hidden + j] = da_z
        d_ih[t, b, 2 * hidden + j] = da_n
        if reset_after:
            d_hh[t, b, j] = da_r
            d_hh[t, b, hidden + j] = da_z
            d_hh[t, b, 2 * hidden + j] = dq
        direct_sh[e] = direct
        reset_sh[e] = zero
    cuda.syncthreads()
    if not reset_after:
        # Phase 2 (reset before the product): da_r from W_hn^T da_n.
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            j = e - r * hidden
            b = first + r
            if t < lengths[b]:
                d_rh = _dot(d_ih[t, b], 2 * hidden, w, hn + j, hidden, hidden, zero)
                da_r, part = _gru_reset_before_point(d_rh, gates[t, b, j], hs[before, b, j], one)
                d_ih[t, b, j] = da_r
                reset_sh[e] = part
        cuda.syncthreads()
    # Phase 3: dh_{t-1}.
    for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
        r = e // hidden
        b = first + r
        if t < lengths[b]:
            dh_sh[e] = (_dot(d_rec[t, b], 0, w, e - r * hidden, hidden, rec, zero)
                        + direct_sh[e] + reset_sh[e])
    cuda.syncthreads()


_GRU_BACKWARD = ("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], "
                 "{f}[::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], int64[::1], boolean, "
                 "boolean, {f}, boolean, int64)")


@kernel(_GRU_BACKWARD)
def _gru_backward(dy, hs, gates, q_tape, weights, d_ih, d_hh, dh, lengths, reverse, reset_after,
                  one, stage, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    direct_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    reset_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    w = _on_chip(w_sh, weights, stage)   # W_hh (reset before: W_rec, then W_hn)
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, before, _ = _step_slots(steps - 1 - s, steps, reverse, True)
        _add_output(dh_sh, dy, t, lengths, first, count)
        _gru_backward_step(dh_sh, direct_sh, reset_sh, hs, gates, q_tape, w, d_ih, d_hh, t,
                           before, lengths, first, count, reset_after, one)
    _store_rows(dh_sh, dh, first, count, hidden)


@kernel(_guarded(_GRU_BACKWARD))
def _gru_backward_guarded(dy, hs, gates, q_tape, weights, d_ih, d_hh, dh, lengths, reverse,
                          reset_after, one, stage, clip, norms, record, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    direct_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    reset_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    w = _on_chip(w_sh, weights, stage)
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, before, _ = _step_slots(steps - 1 - s, steps, reverse, True)
        _add_output(dh_sh, dy, t, lengths, first, count)
        _guard_shared_rows(dh_sh, hidden, t, lengths, first, count, clip, norms, record)
        _gru_backward_step(dh_sh, direct_sh, reset_sh, hs, gates, q_tape, w, d_ih, d_hh, t,
                           before, lengths, first, count, reset_after, one)
    _store_rows(dh_sh, dh, first, count, hidden)


def gru_backward(output, hs, gates, q_tape, w_rec, whn, d_ih, d_hh, dh, lengths, reverse,
                 reset_after, one):
    """The time loop of :func:`fastrnn.kernels.cuda.gru.backward` in one launch.

    Parameters
    ----------
    output : :class:`~._common.OutputGrad`
        This direction's output gradients ``output.dy`` (T, B, H) and the
        error guard, if any.
    hs, gates, q_tape : device arrays
        The forward's tape.
    w_rec, whn : device arrays
        As for :func:`gru_forward`.
    d_ih : device array, shape (T, B, 3H)
        Written: gradients of the input-side pre-activations.
    d_hh : device array
        Written with the reset after the product: those of the recurrent side,
        (T, B, 3H); unused (any shape) with the reset before.
    dh : device array, shape (B, H)
        ``dL/dh_T`` in, ``dL/dh_0`` out.
    lengths : device array of int64, shape (B,)
    reverse, reset_after : bool
    one : float
        1 in the working dtype.
    """
    steps, batch, hidden = output.dy.shape
    if steps:
        weights = _packed(w_rec) if reset_after else _packed(w_rec, whn)
        _launch_backward((_gru_backward, _gru_backward_guarded), output, batch, hidden,
                         output.dy, hs, gates, q_tape, weights, d_ih, d_hh, dh, lengths, reverse,
                         reset_after, one, _stages(weights))


@_device
def _lstm_output_grad(dh_sh, dy, dh_tape, t, lengths, first, count, project, zero):
    """``dL/dh_t`` of this block's rows: with a projection, onto the ``dh`` tape (0 at
    padding steps, kept for ``W_hr``'s gradient), then a barrier; without, into
    ``dh_sh`` (:func:`_add_output`)."""
    if not project:
        _add_output(dh_sh, dy, t, lengths, first, count)
        return
    out_size = dy.shape[2]
    for e in range(cuda.threadIdx.x, count * out_size, cuda.blockDim.x):
        r = e // out_size
        p = e - r * out_size
        b = first + r
        dh_tape[t, b, p] = dh_sh[e] + dy[t, b, p] if t < lengths[b] else zero
    cuda.syncthreads()


@_device
def _lstm_backward_step(dh_sh, dh_tape, cs, gates, peep, w, d_pre, dc, t, before, after,
                        lengths, first, count, coupled, project, one):
    """One backward step of this block's rows, ``dL/dh_t`` on the ``dh`` tape (with a
    projection) or in ``dh_sh``: ``d_pre[t]`` (0 at padding) and ``dc`` in place, then
    ``dh_{t-1} = d_pre[t] W_hh`` into ``dh_sh`` (rows running)."""
    out_size, hidden, n_gates = dh_tape.shape[2], cs.shape[2], d_pre.shape[2]
    zero = one - one
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    # W_hh (G, P), then (projection) W_hr (P, H) from element hr.
    hr = n_gates * out_size
    # Phase 2: the pointwise backward of every element; dc in place.
    for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
        r = e // hidden
        j = e - r * hidden
        b = first + r
        if t >= lengths[b]:
            if not coupled:
                d_pre[t, b, j] = zero
            d_pre[t, b, off_f + j] = zero
            d_pre[t, b, off_g + j] = zero
            d_pre[t, b, off_o + j] = zero
            continue
        if project:
            dm = _dot(dh_tape[t, b], 0, w, hr + j, hidden, out_size, zero)
        else:
            dm = dh_sh[e]
        f = gates[t, b, off_f + j]
        i = one - f if coupled else gates[t, b, j]
        da_i, da_f, da_g, da_o, dc_prev = _lstm_backward_point(
            dm, dc[b, j], i, f, gates[t, b, off_g + j], gates[t, b, off_o + j],
            cs[after, b, j], cs[before, b, j], peep[0, j], peep[1, j], peep[2, j], coupled, one)
        dc[b, j] = dc_prev
        if not coupled:
            d_pre[t, b, j] = da_i
        d_pre[t, b, off_f + j] = da_f
        d_pre[t, b, off_g + j] = da_g
        d_pre[t, b, off_o + j] = da_o
    cuda.syncthreads()
    # Phase 3: dh_{t-1} = dG_t W_hh.
    for e in range(cuda.threadIdx.x, count * out_size, cuda.blockDim.x):
        r = e // out_size
        b = first + r
        if t < lengths[b]:
            dh_sh[e] = _dot(d_pre[t, b], 0, w, e - r * out_size, out_size, n_gates, zero)
    cuda.syncthreads()


_LSTM_BACKWARD = ("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[::1], "
                  "{f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], int64[::1], boolean, "
                  "boolean, boolean, {f}, boolean, int64)")


@kernel(_LSTM_BACKWARD)
def _lstm_backward(dy, cs, gates, peep, weights, d_pre, dh_tape, dh, dc, lengths, reverse,
                   coupled, project, one, stage, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, out_size = dy.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
    w = _on_chip(w_sh, weights, stage)   # W_hh, then (projection) W_hr
    _load_matrix_rows(dh_sh, dh, first, count, out_size)
    cuda.syncthreads()
    for s in range(steps):
        t, before, after = _step_slots(steps - 1 - s, steps, reverse, True)
        _lstm_output_grad(dh_sh, dy, dh_tape, t, lengths, first, count, project, zero)
        _lstm_backward_step(dh_sh, dh_tape, cs, gates, peep, w, d_pre, dc, t, before, after,
                            lengths, first, count, coupled, project, one)
    _store_rows(dh_sh, dh, first, count, out_size)


@kernel(_guarded(_LSTM_BACKWARD))
def _lstm_backward_guarded(dy, cs, gates, peep, weights, d_pre, dh_tape, dh, dc, lengths,
                           reverse, coupled, project, one, stage, clip, norms, record, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    w_sh = cuda.shared.array(SHARED_WEIGHTS, dy.dtype)
    steps, batch, out_size = dy.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
    w = _on_chip(w_sh, weights, stage)
    _load_matrix_rows(dh_sh, dh, first, count, out_size)
    cuda.syncthreads()
    for s in range(steps):
        t, before, after = _step_slots(steps - 1 - s, steps, reverse, True)
        _lstm_output_grad(dh_sh, dy, dh_tape, t, lengths, first, count, project, zero)
        if project:
            _guard_tape_rows(dh_tape, t, lengths, first, count, clip, norms, record)
        else:
            _guard_shared_rows(dh_sh, out_size, t, lengths, first, count, clip, norms, record)
        _lstm_backward_step(dh_sh, dh_tape, cs, gates, peep, w, d_pre, dc, t, before, after,
                            lengths, first, count, coupled, project, one)
    _store_rows(dh_sh, dh, first, count, out_size)


def lstm_backward(output, cs, gates, peep, whh, whr, d_pre, dh_tape, dh, dc, lengths, reverse,
                  coupled, one):
    """The time loop of :func:`fastrnn.kernels.cuda.lstm.backward` in one launch.

    Parameters
    ----------
    output : :class:`~._common.OutputGrad`
        This direction's output gradients ``output.dy`` (T, B, P) and the
        error guard, if any.
    cs, gates : device arrays
        The forward's tape.
    peep : device array, shape (3, H)
    whh : device array, shape (G, P)
    whr : device array of shape (P, H), or None without a projection
    d_pre : device array, shape (T, B, G)
        Written: the pre-activation gradients (0 at padding steps).
    dh_tape : device array
        With a projection, (T, B, P), written: ``dL/dh_t`` at every step (0 at
        padding steps; after the error guard, if any), for ``W_hr``'s
        gradient; without one, (1, B, P), unused.
    dh : device array, shape (B, P)
        ``dL/dh_T`` in, ``dL/dh_0`` out.
    dc : device array, shape (B, H)
        ``dL/dc_T`` in, ``dL/dc_0`` out.
    lengths : device array of int64, shape (B,)
    reverse, coupled : bool
    one : float
        1 in the working dtype.
    """
    steps, batch, out_size = output.dy.shape
    if not steps:
        return
    project = whr is not None
    weights = _packed(whh, whr) if project else _packed(whh)
    _launch_backward((_lstm_backward, _lstm_backward_guarded), output, batch,
                     max(out_size, dc.shape[1]), output.dy, cs, gates, peep, weights, d_pre,
                     dh_tape, dh, dc, lengths, reverse, coupled, project, one, _stages(weights))

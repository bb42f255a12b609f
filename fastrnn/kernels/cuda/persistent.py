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
in shared memory too. ``W_hh`` stays in global memory, where on a GPU it stays
L2-resident; it is transposed once per call so that neighbouring threads read
neighbouring addresses. Backward mirrors this with ``W_hh`` as it is: the
pre-activation gradients of a step, then ``dh_{t-1} = dG_t W_hh`` per row.

The tape is the per-step scans' (same buffers, same layout), so either
backward runs after either forward; the weight gradients stay the big GEMMs
after the scan. Sums run in the same order as the per-step path, so in the
simulator both give the same bits.

What runs here (see :func:`forward_enabled`, :func:`backward_enabled`): every
cell and variant the per-step scans handle, forward and backward, when the
batch has at most :data:`fastrnn.config.CUDA_PERSISTENT_MAX_BATCH` sequences
and a row of the state fits :data:`SHARED_STATE`. Backward with
``error_clip``/``error_norms`` takes the per-step path (their row norms are
float64 by design, which would put float64 arithmetic in every float32
backward kernel).
"""

from numba import cuda

from ... import config
from ...cells.gru import (gru_backward_point, gru_gates_point, gru_output_point,
                          gru_reset_before_point)
from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ...cells.rnn import rnn_backward_point, rnn_forward_point
from ..cpu._common import step_slots
from ._arrays import swap01
from ._jit import kernel, point_device

#: Elements of one shared-memory state buffer of a block: ``rows x width`` must
#: fit. A compile-time constant (static shared arrays; the simulator has no
#: dynamic ones): each kernel holds two to three such buffers, at most 24 KiB
#: in float64, under the 48 KiB of static shared memory a block may have.
SHARED_STATE = 1024
#: Two state buffers back to back (``h_{t-1}`` and ``h_t``, swapped each step).
_SHARED_PAIR = 2 * SHARED_STATE

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


def backward_enabled(batch, widths, error_clip, error_norms):
    """Like :func:`forward_enabled`, for a backward scan: not with the error guard
    (``error_clip`` or ``error_norms``), which stays on the per-step path."""
    return error_clip is None and error_norms is None and forward_enabled(batch, *widths)


def _launch(kernel_, batch, width, *args):
    """Launch ``kernel_`` over ``batch`` rows, one block per :data:`ROWS` of them (fewer
    when ``ROWS`` rows of ``width`` elements would overflow a shared buffer), at most
    :data:`THREADS` threads a block; the rows per block follow ``args``."""
    rows = max(1, min(ROWS, SHARED_STATE // max(width, 1)))
    threads = max(1, min(THREADS, -(-rows * width // 32) * 32))
    kernel_.launch(-(-batch // rows), threads, *args, rows)


def _placeholder(dtype):
    """A (1, 1, 1) device array standing for an absent array argument."""
    return cuda.device_array((1, 1, 1), dtype)


def _transposed(matrix):
    """A C-contiguous device copy of a 2-D device matrix's transpose."""
    rows, cols = matrix.shape
    return swap01(matrix.reshape(rows, cols, 1)).reshape(cols, rows)


# ------------------------------------------------------------ device helpers
@_device
def _dot(vector, start, matrix, column, depth, zero):
    """``sum_k vector[start + k] * matrix[k, column]`` for ``k < depth``, in order."""
    total = zero
    for k in range(depth):
        total += vector[start + k] * matrix[k, column]
    return total


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


# ------------------------------------------------------------------- forward
@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], "
        "boolean, boolean, int64, {f}, int64)")
def _rnn_forward(xproj, whh_t, hs, y, lengths, reverse, keep_tape, nonlinearity, one, rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    steps, batch, hidden = xproj.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
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
                a = xproj[t, b, j] + _dot(h_sh, cur + r * hidden, whh_t, j, hidden, zero)
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
        _launch(_rnn_forward, batch, hidden, xproj, _transposed(whh), hs, y, lengths, reverse,
                keep_tape, nonlinearity, one)


@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[::1], {f}[:, :, ::1], "
        "{f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], boolean, boolean, boolean, "
        "{f}, int64)")
def _gru_forward(xproj, w_rec_t, whn_t, b_hn, hs, gates, q_tape, y, lengths, reverse, keep_tape,
                 reset_after, one, rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    rh_sh = cuda.shared.array(SHARED_STATE, xproj.dtype)
    steps, batch, hidden = xproj.shape[0], hs.shape[1], hs.shape[2]
    first, count = _block_rows(rows, batch)
    zero = one - one
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
                xproj[t, b, j] + _dot(h_sh, row, w_rec_t, j, hidden, zero),
                xproj[t, b, hidden + j] + _dot(h_sh, row, w_rec_t, hidden + j, hidden, zero),
                one)
            gates[k, b, j] = reset
            gates[k, b, hidden + j] = update
            if reset_after:
                q = _dot(h_sh, row, w_rec_t, 2 * hidden + j, hidden, zero) + b_hn[j]
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
                q = _dot(rh_sh, r * hidden, whn_t, j, hidden, zero) + b_hn[j]
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
    whn_t = w_rec[:1] if reset_after else _transposed(whn)
    _launch(_gru_forward, batch, hidden, xproj, _transposed(w_rec), whn_t, b_hn, hs, gates,
            q_tape, y, lengths, reverse, keep_tape, reset_after, one)


@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], "
        "{f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64[::1], boolean, "
        "boolean, boolean, boolean, {f}, int64)")
def _lstm_forward(xproj, whh_t, whr_t, peep, hs, cs, gates, m_tape, y, lengths, reverse,
                  keep_tape, coupled, project, one, rows):
    h_sh = cuda.shared.array(_SHARED_PAIR, xproj.dtype)
    m_sh = cuda.shared.array(SHARED_STATE, xproj.dtype)
    steps, batch = xproj.shape[0], xproj.shape[1]
    hidden, out_size = cs.shape[2], hs.shape[2]
    first, count = _block_rows(rows, batch)
    zero = one - one
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
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
            a_f = xproj[t, b, off_f + j] + _dot(h_sh, row, whh_t, off_f + j, out_size, zero)
            a_g = xproj[t, b, off_g + j] + _dot(h_sh, row, whh_t, off_g + j, out_size, zero)
            a_o = xproj[t, b, off_o + j] + _dot(h_sh, row, whh_t, off_o + j, out_size, zero)
            a_i = a_f   # ignored when coupled
            if not coupled:
                a_i = xproj[t, b, j] + _dot(h_sh, row, whh_t, j, out_size, zero)
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
                    h = _dot(m_sh, r * hidden, whr_t, p, hidden, zero)
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
    whr_t = _transposed(whr) if project else whh[:1]
    m_tape = m_tape if m_tape is not None else _placeholder(gates.dtype)
    _launch(_lstm_forward, batch, max(hs.shape[2], cs.shape[2]), xproj, _transposed(whh), whr_t,
            peep, hs, cs, gates, m_tape, y, lengths, reverse, keep_tape, coupled, project, one)


# ------------------------------------------------------------------ backward
@kernel("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], "
        "int64[::1], boolean, int64, {f}, int64)")
def _rnn_backward(dy, hs, whh, d_pre, dh, lengths, reverse, nonlinearity, one, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, _, after = _step_slots(steps - 1 - s, steps, reverse, True)
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            j = e - r * hidden
            b = first + r
            if t < lengths[b]:
                d_pre[t, b, j] = _rnn_backward_point(dh_sh[e] + dy[t, b, j], hs[after, b, j],
                                                     nonlinearity, one)
            else:
                d_pre[t, b, j] = zero
        cuda.syncthreads()
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            b = first + r
            if t < lengths[b]:
                dh_sh[e] = _dot(d_pre[t, b], 0, whh, e - r * hidden, hidden, zero)
        cuda.syncthreads()
    _store_rows(dh_sh, dh, first, count, hidden)


def rnn_backward(dy, hs, whh, d_pre, dh, lengths, reverse, nonlinearity, one):
    """The time loop of :func:`fastrnn.kernels.cuda.rnn.backward` in one launch.

    Parameters
    ----------
    dy : device array, shape (T, B, H)
        This direction's output gradients.
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
    steps, batch, hidden = dy.shape
    if steps:
        _launch(_rnn_backward, batch, hidden, dy, hs, whh, d_pre, dh, lengths, reverse,
                nonlinearity, one)


@kernel("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], "
        "{f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], int64[::1], boolean, boolean, "
        "{f}, int64)")
def _gru_backward(dy, hs, gates, q_tape, w_rec, whn, d_ih, d_hh, dh, lengths, reverse,
                  reset_after, one, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    direct_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    reset_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    steps, batch, hidden = dy.shape
    first, count = _block_rows(rows, batch)
    zero = one - one
    d_rec = d_hh if reset_after else d_ih   # the rows that multiply w_rec
    _load_matrix_rows(dh_sh, dh, first, count, hidden)
    cuda.syncthreads()
    for s in range(steps):
        t, before, _ = _step_slots(steps - 1 - s, steps, reverse, True)
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
                dh_sh[e] + dy[t, b, j], gates[t, b, j], gates[t, b, hidden + j],
                gates[t, b, 2 * hidden + j], hs[before, b, j], q_tape[t, b, j], reset_after, one)
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
                    d_rh = _dot(d_ih[t, b], 2 * hidden, whn, j, hidden, zero)
                    da_r, part = _gru_reset_before_point(d_rh, gates[t, b, j], hs[before, b, j],
                                                         one)
                    d_ih[t, b, j] = da_r
                    reset_sh[e] = part
            cuda.syncthreads()
        # Phase 3: dh_{t-1}.
        for e in range(cuda.threadIdx.x, count * hidden, cuda.blockDim.x):
            r = e // hidden
            b = first + r
            if t < lengths[b]:
                dh_sh[e] = (_dot(d_rec[t, b], 0, w_rec, e - r * hidden, w_rec.shape[0], zero)
                            + direct_sh[e] + reset_sh[e])
        cuda.syncthreads()
    _store_rows(dh_sh, dh, first, count, hidden)


def gru_backward(dy, hs, gates, q_tape, w_rec, whn, d_ih, d_hh, dh, lengths, reverse,
                 reset_after, one):
    """The time loop of :func:`fastrnn.kernels.cuda.gru.backward` in one launch.

    Parameters
    ----------
    dy : device array, shape (T, B, H)
        This direction's output gradients.
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
    steps, batch, hidden = dy.shape
    if steps:
        _launch(_gru_backward, batch, hidden, dy, hs, gates, q_tape, w_rec,
                w_rec[:1] if reset_after else whn, d_ih, d_hh, dh, lengths, reverse,
                reset_after, one)


@kernel("void({f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], "
        "{f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], int64[::1], "
        "boolean, boolean, boolean, {f}, int64)")
def _lstm_backward(dy, cs, gates, peep, whh, whr, d_pre, dh_tape, dh, dc, lengths, reverse,
                   coupled, project, one, rows):
    dh_sh = cuda.shared.array(SHARED_STATE, dy.dtype)
    steps, batch, out_size = dy.shape
    hidden = cs.shape[2]
    first, count = _block_rows(rows, batch)
    zero = one - one
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    _load_matrix_rows(dh_sh, dh, first, count, out_size)
    cuda.syncthreads()
    for s in range(steps):
        t, before, after = _step_slots(steps - 1 - s, steps, reverse, True)
        if project:
            # Phase 1 (projection): dL/dh_t, kept for W_hr's gradient.
            for e in range(cuda.threadIdx.x, count * out_size, cuda.blockDim.x):
                r = e // out_size
                p = e - r * out_size
                b = first + r
                dh_tape[t, b, p] = dh_sh[e] + dy[t, b, p] if t < lengths[b] else zero
            cuda.syncthreads()
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
                dm = _dot(dh_tape[t, b], 0, whr, j, out_size, zero)
            else:
                dm = dh_sh[e] + dy[t, b, j]
            f = gates[t, b, off_f + j]
            i = one - f if coupled else gates[t, b, j]
            da_i, da_f, da_g, da_o, dc_prev = _lstm_backward_point(
                dm, dc[b, j], i, f, gates[t, b, off_g + j], gates[t, b, off_o + j],
                cs[after, b, j], cs[before, b, j], peep[0, j], peep[1, j], peep[2, j], coupled,
                one)
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
                dh_sh[e] = _dot(d_pre[t, b], 0, whh, e - r * out_size, whh.shape[0], zero)
        cuda.syncthreads()
    _store_rows(dh_sh, dh, first, count, out_size)


def lstm_backward(dy, cs, gates, peep, whh, whr, d_pre, dh_tape, dh, dc, lengths, reverse,
                  coupled, one):
    """The time loop of :func:`fastrnn.kernels.cuda.lstm.backward` in one launch.

    Parameters
    ----------
    dy : device array, shape (T, B, P)
        This direction's output gradients.
    cs, gates : device arrays
        The forward's tape.
    peep : device array, shape (3, H)
    whh : device array, shape (G, P)
    whr : device array of shape (P, H), or None without a projection
    d_pre : device array, shape (T, B, G)
        Written: the pre-activation gradients (0 at padding steps).
    dh_tape : device array
        With a projection, (T, B, P), written: ``dL/dh_t`` at every step (0 at
        padding steps), for ``W_hr``'s gradient; unused without one.
    dh : device array, shape (B, P)
        ``dL/dh_T`` in, ``dL/dh_0`` out.
    dc : device array, shape (B, H)
        ``dL/dc_T`` in, ``dL/dc_0`` out.
    lengths : device array of int64, shape (B,)
    reverse, coupled : bool
    one : float
        1 in the working dtype.
    """
    steps, batch, out_size = dy.shape
    if not steps:
        return
    project = whr is not None
    _launch(_lstm_backward, batch, max(out_size, dc.shape[1]), dy, cs, gates, peep, whh,
            whr if project else whh[:1], d_pre, dh_tape, dh, dc, lengths, reverse, coupled,
            project, one)

"""CUDA scans for the GRU, reset gate after (PyTorch) or before (Cho, d2l) the product.

Per step, forward: the recurrent product for the r, z (and, reset after, n)
rows of ``W_hh``; a gates kernel (``r``, ``z`` and ``r * h``); for reset
before, the product ``(r * h) @ W_hn^T``; then the output kernel (``n``,
``h``). The tape (on the device) is that of the CPU scans: states, gate
activations, and ``q`` (``W_hn h + b_hn`` after, ``r * h`` before).
Weights, gradients, ``x``, ``y``, ``dy``, ``dx`` and the states are device
arrays (see :mod:`._common`).
"""

from numba import cuda

from ...cells.gru import (gru_backward_point, gru_gates_point, gru_output_point,
                          gru_reset_before_point)
from ..cpu._common import final_slot, tape_length
from . import persistent
from ._arrays import add, assign, copy, upload, zeros
from ._common import (OutputGrad, accumulate_input_grads, accumulate_outer, add_bias_gradient,
                      entering, input_projection, output_columns, rows, states, step_slots,
                      store_columns)
from ._gemm import columns, matmul
from ._jit import kernel, one_of, point_device, row_col

_gates_point = point_device(gru_gates_point)
_output_point = point_device(gru_output_point)
_backward_point = point_device(gru_backward_point)
_reset_before_point = point_device(gru_reset_before_point)


@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], int64, "
        "int64, int64[::1], {f})")
def _gates_step(xproj, rec, h_prev, gates, rh, k, t, lengths, one):
    index = cuda.grid(1)
    hidden = h_prev.shape[1]
    if index >= h_prev.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        return
    r, z = _gates_point(xproj[t, b, j] + rec[b, j], xproj[t, b, hidden + j] + rec[b, hidden + j],
                        one)
    gates[k, b, j] = r
    gates[k, b, hidden + j] = z
    rh[b, j] = r * h_prev[b, j]


@kernel("void({f}[:, :, ::1], {f}[:, ::1], int64, {f}[::1], {f}[:, ::1], {f}[:, ::1], "
        "{f}[:, :, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64, int64, int64[::1], boolean, {f})")
def _output_step(xproj, q_source, q_col, b_hn, h_prev, h_next, gates, q_tape, y, k, t, lengths,
                 reset_after, one):
    index = cuda.grid(1)
    hidden = h_prev.shape[1]
    if index >= h_prev.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        h_next[b, j] = h_prev[b, j]
        q_tape[k, b, j] = 0
        return
    r = gates[k, b, j]
    q = q_source[b, q_col + j] + b_hn[j]
    n, h = _output_point(xproj[t, b, 2 * hidden + j], q, r, gates[k, b, hidden + j], h_prev[b, j],
                         reset_after, one)
    gates[k, b, 2 * hidden + j] = n
    q_tape[k, b, j] = q if reset_after else r * h_prev[b, j]
    h_next[b, j] = h
    y[t, b, j] = h


@kernel("void({f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], "
        "{f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], int64, int64[::1], boolean, {f})")
def _backward_step(dh_total, gates, h_before, q_tape, d_ih, d_hh, da_n, direct, d_rz, t, lengths,
                   reset_after, one):
    index = cuda.grid(1)
    hidden = dh_total.shape[1]
    if index >= dh_total.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        for gate in range(3):
            d_ih[t, b, gate * hidden + j] = 0
            if reset_after:
                d_hh[t, b, gate * hidden + j] = 0
        da_n[b, j] = 0
        if not reset_after:
            d_rz[b, j] = 0
            d_rz[b, hidden + j] = 0
        return
    da_r, da_z, da_n_j, dq, direct_j = _backward_point(
        dh_total[b, j], gates[t, b, j], gates[t, b, hidden + j], gates[t, b, 2 * hidden + j],
        h_before[b, j], q_tape[t, b, j], reset_after, one)
    d_ih[t, b, j] = da_r
    d_ih[t, b, hidden + j] = da_z
    d_ih[t, b, 2 * hidden + j] = da_n_j
    if reset_after:
        d_hh[t, b, j] = da_r
        d_hh[t, b, hidden + j] = da_z
        d_hh[t, b, 2 * hidden + j] = dq
    da_n[b, j] = da_n_j
    direct[b, j] = direct_j


@kernel("void({f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], "
        "{f}[:, ::1], int64, int64[::1], {f})")
def _reset_step(d_rh, gates, h_before, d_ih, d_rz, reset, t, lengths, one):
    index = cuda.grid(1)
    hidden = d_rh.shape[1]
    if index >= d_rh.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        return
    da_r, dh_part = _reset_before_point(d_rh[b, j], gates[t, b, j], h_before[b, j], one)
    d_ih[t, b, j] = da_r
    d_rz[b, j] = da_r
    d_rz[b, hidden + j] = d_ih[t, b, hidden + j]
    reset[b, j] = dh_part


@kernel("void({f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], int64, int64[::1])")
def _state_grad_step(dh, dh_rec, direct, reset, t, lengths):
    index = cuda.grid(1)
    hidden = dh.shape[1]
    if index >= dh.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t < lengths[b]:
        dh[b, j] = dh_rec[b, j] + direct[b, j] + reset[b, j]


def _biases(spec, weights, dtype):
    """``(bias, b_hn)``: the input projection's bias (``b_ih`` plus the r, z rows of
    ``b_hh``) or None, and ``b_hn`` (zeros without bias); device arrays."""
    hidden = spec.hidden_size
    if not spec.bias:
        return None, zeros(hidden, dtype)
    b_ih, b_hh = weights["bias_ih"], weights["bias_hh"]
    bias = copy(b_ih)
    assign(bias[:2 * hidden], add(b_ih[:2 * hidden], b_hh[:2 * hidden]))
    return bias, b_hh[2 * hidden:]


def _recurrent_weights(spec, weights):
    """``(w_rec, whn)``: all of ``W_hh`` (after), or its r,z rows and its n rows (before);
    device views (row blocks of a C-contiguous matrix are C-contiguous)."""
    weight_hh = weights["weight_hh"]
    if spec.reset_after:
        return weight_hh, weight_hh[:0]
    hidden = spec.hidden_size
    return weight_hh[:2 * hidden], weight_hh[2 * hidden:]


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one GRU layer on the GPU; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, y.dtype
    one = one_of(dtype)
    lengths_d = upload(lengths)
    bias, b_hn = _biases(spec, weights, dtype)
    xproj = input_projection(x, weights["weight_ih"], bias)
    w_rec, whn = _recurrent_weights(spec, weights)
    slots = tape_length(steps, keep_tape)
    hs = states(state0[0], steps, keep_tape, reverse)
    gates = cuda.device_array((slots, batch, 3 * hidden), dtype)
    q_tape = cuda.device_array((slots, batch, hidden), dtype)
    y_d = output_columns(y, col0, hidden)
    if persistent.forward_enabled(batch, hidden):
        persistent.gru_forward(xproj, w_rec, whn, b_hn, hs, gates, q_tape, y_d, lengths_d, reverse,
                               keep_tape, spec.reset_after, one)
    else:
        rec = cuda.device_array((batch, w_rec.shape[0]), dtype)
        rh = cuda.device_array((batch, hidden), dtype)
        q_rec = cuda.device_array((batch, hidden), dtype)
        count = batch * hidden
        for s in range(steps):
            t, before, after = step_slots(s, steps, reverse, keep_tape)
            k = t if keep_tape else 0
            matmul(hs[before], w_rec, rec, trans_b=True)
            _gates_step.over(count, xproj, rec, hs[before], gates, rh, k, t, lengths_d, one)
            if spec.reset_after:
                q_source, q_col = rec, 2 * hidden
            else:
                matmul(rh, whn, q_rec, trans_b=True)
                q_source, q_col = q_rec, 0
            _output_step.over(count, xproj, q_source, q_col, b_hn, hs[before], hs[after], gates,
                              q_tape, y_d, k, t, lengths_d, spec.reset_after, one)
    store_columns(y, y_d, col0)
    state_n = (hs[final_slot(steps, keep_tape, reverse)],)
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths_d, reverse=reverse, hs=hs, gates=gates, q=q_tape)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, gates, hs, reverse = tape["x"], tape["gates"], tape["hs"], tape["reverse"]
    lengths, q_tape = tape["lengths"], tape["q"]
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, gates.dtype
    reset_after = spec.reset_after
    one = one_of(dtype)
    w_rec, whn = _recurrent_weights(spec, weights)
    output = OutputGrad(dy, col0, hidden, lengths, error_clip, error_norms)
    d_ih = cuda.device_array(gates.shape, dtype)
    d_hh = cuda.device_array(gates.shape if reset_after else (1, 1, 1), dtype)
    dh = copy(dstate_n[0])
    if persistent.backward_enabled(batch, hidden):
        persistent.gru_backward(output, hs, gates, q_tape, w_rec, whn, d_ih, d_hh, dh, lengths,
                                reverse, reset_after, one)
    else:
        dh_total, dh_rec, direct, da_n, d_rh = (cuda.device_array((batch, hidden), dtype)
                                                for _ in range(5))
        reset = zeros((batch, hidden), dtype)
        d_rz = cuda.device_array((batch, 2 * hidden), dtype)
        count = batch * hidden
        for s in range(steps):
            t, before, _ = step_slots(steps - 1 - s, steps, reverse, True)
            output.total(dh, t, dh_total)
            _backward_step.over(count, dh_total, gates, hs[before], q_tape, d_ih, d_hh, da_n,
                                direct, d_rz, t, lengths, reset_after, one)
            if reset_after:
                matmul(d_hh[t], w_rec, dh_rec)
            else:
                matmul(da_n, whn, d_rh)
                _reset_step.over(count, d_rh, gates, hs[before], d_ih, d_rz, reset, t, lengths,
                                 one)
                matmul(d_rz, w_rec, dh_rec)
            _state_grad_step.over(count, dh, dh_rec, direct, reset, t, lengths)
    output.finish()
    accumulate_input_grads(d_ih, x, weights["weight_ih"], grads["weight_ih"], dx)
    grad_hh = grads["weight_hh"]
    h_before = entering(hs, reverse)
    if reset_after:
        accumulate_outer(grad_hh, d_hh, h_before)
    else:
        d_rows = rows(d_ih)
        shape = (steps, batch, 2 * hidden)
        accumulate_outer(grad_hh[:2 * hidden], columns(d_rows, 0, 2 * hidden).reshape(*shape),
                         h_before)
        accumulate_outer(grad_hh[2 * hidden:],
                         columns(d_rows, 2 * hidden, hidden).reshape(steps, batch, hidden),
                         q_tape)
    if spec.bias:
        add_bias_gradient(d_ih, grads["bias_ih"])
        add_bias_gradient(d_hh if reset_after else d_ih, grads["bias_hh"])
    return (dh,)


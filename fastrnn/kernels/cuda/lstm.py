"""CUDA scans for the LSTM: peephole, coupled (CIFG) and projection variants.

Per step, forward: the recurrent product ``h_{t-1} @ W_hh^T``, one pointwise
kernel running :func:`fastrnn.cells.lstm.lstm_forward_point` per element and,
with a projection, the product ``m_t @ W_hr^T`` and a kernel finishing ``h_t``.
Backward mirrors it. The tape (on the device) is the CPU scans': time-aligned
``h`` and ``c`` buffers, the gate activations and, with a projection, ``m_t``.
Weights, gradients, ``x``, ``y``, ``dy``, ``dx`` and the states are device
arrays (see :mod:`._common`).
"""

from numba import cuda

from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ..cpu._common import final_slot, tape_length
from . import persistent
from ._arrays import add, copy, upload, zeros
from ._common import (OutputGrad, accumulate_input_grads, accumulate_outer, add_bias_gradient,
                      copy_valid, entering, input_projection, leaving, masked_copy,
                      output_columns, rows, states, step_slots, store_columns)
from ._gemm import matmul
from ._jit import kernel, one_of, point_device, row_col

_forward_point = point_device(lstm_forward_point)
_backward_point = point_device(lstm_backward_point)


@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], "
        "{f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], int64, int64, int64[::1], boolean, "
        "boolean, {f})")
def _forward_step(xproj, rec, peep, c_prev, c_next, h_prev, out, gates, y, k, t, lengths,
                  coupled, direct, one):
    # ``out`` is h_t itself (``direct``) or m_t, which a projection turns into h_t.
    index = cuda.grid(1)
    hidden = c_prev.shape[1]
    if index >= c_prev.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        c_next[b, j] = c_prev[b, j]
        if direct:
            out[b, j] = h_prev[b, j]
        return
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    i, f, g, o, c, m = _forward_point(
        xproj[t, b, j] + rec[b, j], xproj[t, b, off_f + j] + rec[b, off_f + j],
        xproj[t, b, off_g + j] + rec[b, off_g + j], xproj[t, b, off_o + j] + rec[b, off_o + j],
        c_prev[b, j], peep[0, j], peep[1, j], peep[2, j], coupled, one)
    if not coupled:
        gates[k, b, j] = i
    gates[k, b, off_f + j] = f
    gates[k, b, off_g + j] = g
    gates[k, b, off_o + j] = o
    c_next[b, j] = c
    out[b, j] = m
    if direct:
        y[t, b, j] = m


@kernel("void({f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], int64, int64[::1])")
def _projected_step(h_prev, h_next, y, t, lengths):
    index = cuda.grid(1)
    width = h_next.shape[1]
    if index >= h_next.shape[0] * width:
        return
    b, j = row_col(index, width)
    if t < lengths[b]:
        y[t, b, j] = h_next[b, j]
    else:
        h_next[b, j] = h_prev[b, j]


@kernel("void({f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], "
        "{f}[:, ::1], {f}[:, :, ::1], int64, int64[::1], boolean, {f})")
def _backward_step(dm, dc_next, dc_prev, gates, c_before, c_after, peep, d_pre, t, lengths,
                   coupled, one):
    index = cuda.grid(1)
    hidden = dc_next.shape[1]
    if index >= dc_next.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    if t >= lengths[b]:
        if not coupled:
            d_pre[t, b, j] = 0
        d_pre[t, b, off_f + j] = 0
        d_pre[t, b, off_g + j] = 0
        d_pre[t, b, off_o + j] = 0
        dc_prev[b, j] = dc_next[b, j]
        return
    f = gates[t, b, off_f + j]
    i = one - f if coupled else gates[t, b, j]
    da_i, da_f, da_g, da_o, dc_p = _backward_point(
        dm[b, j], dc_next[b, j], i, f, gates[t, b, off_g + j], gates[t, b, off_o + j],
        c_after[b, j], c_before[b, j], peep[0, j], peep[1, j], peep[2, j], coupled, one)
    if not coupled:
        d_pre[t, b, j] = da_i
    d_pre[t, b, off_f + j] = da_f
    d_pre[t, b, off_g + j] = da_g
    d_pre[t, b, off_o + j] = da_o
    dc_prev[b, j] = dc_p


@kernel("void({f}[:, ::1], {f}[:, ::1], {f}[:, ::1], boolean, {f}, {f}[:, ::1])")
def _peephole_sums(d_rows, c_before, c_after, coupled, zero, out):
    # out[p, j] = sum over rows of d_pre[gate p] * (entering c, or leaving c for o).
    index = cuda.grid(1)
    hidden = out.shape[1]
    if index >= out.shape[0] * hidden:
        return
    p, j = row_col(index, hidden)
    last = p == out.shape[0] - 1
    if coupled:
        offset = 2 * hidden if last else 0
    else:
        offset = 3 * hidden if last else p * hidden
    total = zero
    for r in range(d_rows.shape[0]):
        state = c_after[r, j] if last else c_before[r, j]
        total += d_rows[r, offset + j] * state
    out[p, j] += total


def _add_peephole_grads(spec, d_pre, cs, reverse, grad):
    """Add the peephole gradients to ``grad`` (device): i and f from the entering cell
    state, o from the leaving one."""
    hidden, dtype = spec.hidden_size, d_pre.dtype
    _peephole_sums.over(grad.shape[0] * hidden, rows(d_pre), rows(entering(cs, reverse)),
                        rows(leaving(cs, reverse)), spec.coupled, dtype.type(0), grad)


@kernel("void({f}[:, ::1], int64, {f}[:, ::1])")
def _put_rows(source, first, target):
    index = cuda.grid(1)
    cols = source.shape[1]
    if index >= source.shape[0] * cols:
        return
    r, c = row_col(index, cols)
    target[first + r, c] = source[r, c]


def _peephole_rows(spec, weights, dtype):
    """Peephole weights as three rows (i, f, o) on the device, zeros where absent (the
    device twin of :func:`fastrnn.kernels.cpu.lstm._peephole_rows`)."""
    out = zeros((3, spec.hidden_size), dtype)
    if spec.peephole:
        source = weights["weight_ch"]
        _put_rows.over(source.size, source, 1 if spec.coupled else 0, out)
    return out


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one LSTM layer on the GPU; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are ``(h, c)``; the tape holds device arrays.
    """
    steps, batch, _ = x.shape
    hidden, out_size, dtype = spec.hidden_size, spec.output_size, y.dtype
    project = spec.proj_size > 0
    one = one_of(dtype)
    lengths_d = upload(lengths)
    bias = add(weights["bias_ih"], weights["bias_hh"]) if spec.bias else None
    xproj = input_projection(x, weights["weight_ih"], bias)
    whh = weights["weight_hh"]
    whr = weights["weight_hr"] if project else None
    peep = _peephole_rows(spec, weights, dtype)
    slots = tape_length(steps, keep_tape)
    hs = states(state0[0], steps, keep_tape, reverse)
    cs = states(state0[1], steps, keep_tape, reverse)
    gates = cuda.device_array((slots, batch, xproj.shape[2]), dtype)
    m = cuda.device_array((batch, hidden), dtype) if project else None
    m_tape = cuda.device_array((slots, batch, hidden), dtype) if project and keep_tape else None
    y_d = output_columns(y, col0, out_size)
    if persistent.forward_enabled(batch, hidden, out_size):
        persistent.lstm_forward(xproj, whh, whr, peep, hs, cs, gates, m_tape, y_d, lengths_d,
                                reverse, keep_tape, spec.coupled, one)
    else:
        rec = cuda.device_array((batch, xproj.shape[2]), dtype)
        for s in range(steps):
            t, before, after = step_slots(s, steps, reverse, keep_tape)
            k = t if keep_tape else 0
            matmul(hs[before], whh, rec, trans_b=True)
            _forward_step.over(batch * hidden, xproj, rec, peep, cs[before], cs[after],
                               hs[before], m if project else hs[after], gates, y_d, k, t,
                               lengths_d, spec.coupled, not project, one)
            if project:
                matmul(m, whr, hs[after], trans_b=True)
                _projected_step.over(batch * out_size, hs[before], hs[after], y_d, t, lengths_d)
                if keep_tape:
                    masked_copy(m, m_tape[t], t, lengths_d)
    store_columns(y, y_d, col0)
    last = final_slot(steps, keep_tape, reverse)
    state_n = (hs[last], cs[last])
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths_d, reverse=reverse, hs=hs, cs=cs, gates=gates,
                         m=m_tape)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, gates, cs, hs = tape["x"], tape["gates"], tape["cs"], tape["hs"]
    reverse, lengths = tape["reverse"], tape["lengths"]
    steps, batch, _ = x.shape
    hidden, out_size, dtype = spec.hidden_size, spec.output_size, gates.dtype
    project = spec.proj_size > 0
    one = one_of(dtype)
    whh = weights["weight_hh"]
    whr = weights["weight_hr"] if project else None
    peep = _peephole_rows(spec, weights, dtype)
    output = OutputGrad(dy, col0, out_size, lengths, error_clip, error_norms)
    d_pre = cuda.device_array(gates.shape, dtype)
    dh = copy(dstate_n[0])
    dc_next, dc_prev = copy(dstate_n[1]), cuda.device_array((batch, hidden), dtype)
    dh_tape = cuda.device_array((steps if project else 1, batch, out_size), dtype)
    if persistent.backward_enabled(batch, hidden, out_size):
        persistent.lstm_backward(output, cs, gates, peep, whh, whr, d_pre, dh_tape, dh,
                                 dc_next, lengths, reverse, spec.coupled, one)
    else:
        dm = cuda.device_array((batch, hidden), dtype) if project else None
        dh_rec = cuda.device_array((batch, out_size), dtype)
        for s in range(steps):
            t, before, after = step_slots(steps - 1 - s, steps, reverse, True)
            dh_total = dh_tape[t] if project else dh_tape[0]
            output.total(dh, t, dh_total)
            if project:
                matmul(dh_total, whr, dm)
            _backward_step.over(batch * hidden, dm if project else dh_total, dc_next, dc_prev,
                                gates, cs[before], cs[after], peep, d_pre, t, lengths,
                                spec.coupled, one)
            matmul(d_pre[t], whh, dh_rec)
            copy_valid(dh, dh_rec, t, lengths)
            dc_next, dc_prev = dc_prev, dc_next
    output.finish()
    accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx)
    accumulate_outer(grads["weight_hh"], d_pre, entering(hs, reverse))
    if project:
        accumulate_outer(grads["weight_hr"], dh_tape, tape["m"])
    if spec.bias:
        add_bias_gradient(d_pre, grads["bias_ih"], grads["bias_hh"])
    if spec.peephole:
        _add_peephole_grads(spec, d_pre, cs, reverse, grads["weight_ch"])
    return dh, dc_next

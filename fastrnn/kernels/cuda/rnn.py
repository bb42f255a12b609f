"""CUDA scans for the Elman RNN (tanh or ReLU).

Per step: the recurrent product ``h_{t-1} @ W_hh^T`` (:func:`~._gemm.matmul`)
and one pointwise kernel, one thread per element, running
:func:`fastrnn.cells.rnn.rnn_forward_point`. The tape is the time-aligned
buffer of hidden states, kept on the device. Weights, gradients, ``x``,
``y``, ``dy``, ``dx`` and the states are device arrays (see :mod:`._common`).
"""

from numba import cuda

from ...cells.rnn import RELU, TANH, rnn_backward_point, rnn_forward_point
from ..cpu._common import final_slot
from . import persistent
from ._arrays import add, copy, upload
from ._common import (OutputGrad, accumulate_input_grads, accumulate_outer, add_bias_gradient,
                      copy_valid, entering, input_projection, output_columns, states,
                      step_slots, store_columns)
from ._gemm import matmul
from ._jit import kernel, one_of, point_device, row_col

_forward_point = point_device(rnn_forward_point)
_backward_point = point_device(rnn_backward_point)
_NONLINEARITY_CODES = {"tanh": TANH, "relu": RELU}


@kernel("void({f}[:, :, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], int64, "
        "int64[::1], int64, {f})")
def _forward_step(xproj, rec, h_prev, h_next, y, t, lengths, nonlinearity, one):
    index = cuda.grid(1)
    hidden = h_next.shape[1]
    if index >= h_next.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        h_next[b, j] = h_prev[b, j]
        return
    h = _forward_point(xproj[t, b, j] + rec[b, j], nonlinearity, one)
    h_next[b, j] = h
    y[t, b, j] = h


@kernel("void({f}[:, ::1], {f}[:, ::1], {f}[:, :, ::1], int64, int64[::1], int64, {f})")
def _backward_step(dh_total, h_after, d_pre, t, lengths, nonlinearity, one):
    index = cuda.grid(1)
    hidden = dh_total.shape[1]
    if index >= dh_total.shape[0] * hidden:
        return
    b, j = row_col(index, hidden)
    if t >= lengths[b]:
        d_pre[t, b, j] = 0
        return
    d_pre[t, b, j] = _backward_point(dh_total[b, j], h_after[b, j], nonlinearity, one)


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one RNN layer on the GPU; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``; the tape holds
    device arrays.
    """
    steps, batch, _ = x.shape
    hidden = spec.hidden_size
    one = one_of(y.dtype)
    code = _NONLINEARITY_CODES[spec.nonlinearity]
    lengths_d = upload(lengths)
    bias = add(weights["bias_ih"], weights["bias_hh"]) if spec.bias else None
    xproj = input_projection(x, weights["weight_ih"], bias)
    whh = weights["weight_hh"]
    hs = states(state0[0], steps, keep_tape, reverse)
    y_d = output_columns(y, col0, hidden)
    if persistent.forward_enabled(batch, hidden):
        persistent.rnn_forward(xproj, whh, hs, y_d, lengths_d, reverse, keep_tape, code, one)
    else:
        rec = cuda.device_array((batch, hidden), y.dtype)
        for s in range(steps):
            t, before, after = step_slots(s, steps, reverse, keep_tape)
            matmul(hs[before], whh, rec, trans_b=True)
            _forward_step.over(batch * hidden, xproj, rec, hs[before], hs[after], y_d, t,
                               lengths_d, code, one)
    store_columns(y, y_d, col0)
    state_n = (hs[final_slot(steps, keep_tape, reverse)],)
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths_d, reverse=reverse, hs=hs)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, hs, reverse, lengths = tape["x"], tape["hs"], tape["reverse"], tape["lengths"]
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, hs.dtype
    one = one_of(dtype)
    code = _NONLINEARITY_CODES[spec.nonlinearity]
    whh = weights["weight_hh"]
    output = OutputGrad(dy, col0, hidden, lengths, error_clip, error_norms)
    d_pre = cuda.device_array((steps, batch, hidden), dtype)
    dh = copy(dstate_n[0])
    if persistent.backward_enabled(batch, hidden):
        persistent.rnn_backward(output, hs, whh, d_pre, dh, lengths, reverse, code, one)
    else:
        dh_total = cuda.device_array((batch, hidden), dtype)
        dh_rec = cuda.device_array((batch, hidden), dtype)
        for s in range(steps):
            t, _, after = step_slots(steps - 1 - s, steps, reverse, True)
            output.total(dh, t, dh_total)
            _backward_step.over(batch * hidden, dh_total, hs[after], d_pre, t, lengths, code,
                                one)
            matmul(d_pre[t], whh, dh_rec)
            copy_valid(dh, dh_rec, t, lengths)
    output.finish()
    accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx)
    accumulate_outer(grads["weight_hh"], d_pre, entering(hs, reverse))
    if spec.bias:
        add_bias_gradient(d_pre, grads["bias_ih"], grads["bias_hh"])
    return (dh,)



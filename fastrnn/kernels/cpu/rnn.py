"""CPU scans for the Elman RNN (tanh or ReLU).

Per step: one GEMM ``h_{t-1} @ W_hh^T`` and the pointwise nonlinearity of
:mod:`fastrnn.cells.rnn`; the tape is the time-aligned buffer of hidden states.
"""

import numpy as np

from ...cells.rnn import RELU, TANH, rnn_backward_point, rnn_forward_point
from ._common import (accumulate_input_grads, accumulate_outer, bias_gradient, entering_states,
                      error_guard, final_slot, guarded_output_grad, input_projection,
                      recurrent_product, scratch, state_buffer, step_slots, transposed)
from ._jit import point_jit, scan_jit
from ._threads import note_scan_pool

_forward_point = point_jit(rnn_forward_point)
_backward_point = point_jit(rnn_backward_point)
_NONLINEARITY_CODES = {"tanh": TANH, "relu": RELU}


@scan_jit
def _forward_scan(xproj, whh, lengths, reverse, keep, nonlinearity, y, col0, hs):
    steps, batch, hidden = xproj.shape
    one = np.ones(1, xproj.dtype)[0]
    rec = np.empty((batch, hidden), xproj.dtype)
    rec_t = np.empty((hidden, batch), xproj.dtype)
    for s in range(steps):
        t, before, after = step_slots(s, steps, reverse, keep)
        h_prev, h_next = hs[before], hs[after]
        recurrent_product(h_prev, whh, rec_t, rec)
        for b in range(batch):
            if t >= lengths[b]:
                h_next[b] = h_prev[b]
                continue
            a, r, h_row = xproj[t, b], rec[b], h_next[b]
            for j in range(hidden):
                h_row[j] = _forward_point(a[j] + r[j], nonlinearity, one)
            y[t, b, col0:col0 + hidden] = h_row


@scan_jit
def _backward_scan(dy, col0, dh_n, whh_t, lengths, reverse, nonlinearity, hs, d_pre, dh0, clip,
                   norms):
    steps, batch, hidden = d_pre.shape
    one = np.ones(1, d_pre.dtype)[0]
    dh = dh_n.copy()
    dh_rec = np.empty((batch, hidden), d_pre.dtype)
    dh_rec_t = np.empty((hidden, batch), d_pre.dtype)
    zeros = np.zeros((batch, dy.shape[2]), d_pre.dtype)
    for s in range(steps):
        t, _, after = step_slots(steps - 1 - s, steps, reverse, True)
        dy_t = guarded_output_grad(dh, dy, t, col0, lengths, clip, norms, zeros)
        for b in range(batch):
            if t >= lengths[b]:
                d_pre[t, b] = 0.0
                continue
            d_row, h_row, dh_row, dy_row = d_pre[t, b], hs[after, b], dh[b], dy_t[b, col0:]
            for j in range(hidden):
                d_row[j] = _backward_point(dh_row[j] + dy_row[j], h_row[j], nonlinearity, one)
        recurrent_product(d_pre[t], whh_t, dh_rec_t, dh_rec)
        for b in range(batch):
            if t < lengths[b]:
                dh[b] = dh_rec[b]
    dh0[:] = dh


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one RNN layer; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    note_scan_pool(False)
    steps = x.shape[0]
    bias = weights["bias_ih"] + weights["bias_hh"] if spec.bias else None
    xproj = input_projection(x, weights["weight_ih"], bias)
    hs = state_buffer(state0[0], steps, keep_tape, reverse)
    _forward_scan(xproj, weights["weight_hh"], lengths, reverse,
                  keep_tape, _NONLINEARITY_CODES[spec.nonlinearity], y, col0, hs)
    state_n = (hs[final_slot(steps, keep_tape, reverse)].copy(),)
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths, reverse=reverse, hs=hs)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    note_scan_pool(False)
    x, hs, reverse = tape["x"], tape["hs"], tape["reverse"]
    steps, batch, _ = x.shape
    d_pre = scratch("d_pre", (steps, batch, spec.hidden_size), hs.dtype)
    dh0 = np.empty((batch, spec.hidden_size), hs.dtype)
    _backward_scan(dy, col0, dstate_n[0], transposed(weights["weight_hh"]),
                   tape["lengths"], reverse,
                   _NONLINEARITY_CODES[spec.nonlinearity], hs, d_pre, dh0,
                   *error_guard(error_clip, error_norms))
    token_sums = accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx)
    accumulate_outer(grads["weight_hh"], d_pre, entering_states(hs, reverse))
    if spec.bias:
        bias_grad = bias_gradient(d_pre, token_sums)
        grads["bias_ih"] += bias_grad
        grads["bias_hh"] += bias_grad
    return (dh0,)

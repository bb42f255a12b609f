"""CPU scans for the Elman RNN (tanh or ReLU).

Per step: one GEMM ``h_{t-1} @ W_hh^T`` and the pointwise nonlinearity of
:mod:`fastrnn.cells.rnn`; the tape is the sequence of hidden states.
"""

import numpy as np

from ...cells.rnn import RELU, TANH, rnn_backward_point, rnn_forward_point
from ._common import (accumulate_input_grads, accumulate_outer, column_sums, input_projection,
                      tape_length)
from ._jit import point_jit, scan_jit

_forward_point = point_jit(rnn_forward_point)
_backward_point = point_jit(rnn_backward_point)
_NONLINEARITY_CODES = {"tanh": TANH, "relu": RELU}


@scan_jit
def _forward_scan(xproj, whh_t, h0, lengths, reverse, nonlinearity, y, col0, h_before, h_after,
                  h_n):
    steps, batch, hidden = xproj.shape
    h = h0.copy()
    rec = np.empty((batch, hidden), xproj.dtype)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        k = t if h_after.shape[0] == steps else 0
        np.dot(h, whh_t, rec)
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(hidden):
                h_before[k, b, j] = h[b, j]
                if valid:
                    h_t = _forward_point(xproj[t, b, j] + rec[b, j], nonlinearity)
                    h_after[k, b, j] = h_t
                    y[t, b, col0 + j] = h_t
            if valid:
                for j in range(hidden):
                    h[b, j] = h_after[k, b, j]
    h_n[:] = h


@scan_jit
def _backward_scan(dy, col0, dh_n, whh, lengths, reverse, nonlinearity, h_after, d_pre, dh0):
    steps, batch, hidden = d_pre.shape
    dh = dh_n.copy()
    dh_rec = np.empty((batch, hidden), d_pre.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        for b in range(batch):
            if t >= lengths[b]:
                d_pre[t, b, :] = 0.0
                continue
            for j in range(hidden):
                d_pre[t, b, j] = _backward_point(dh[b, j] + dy[t, b, col0 + j],
                                                 h_after[t, b, j], nonlinearity)
        np.dot(d_pre[t], whh, dh_rec)
        for b in range(batch):
            if t < lengths[b]:
                for j in range(hidden):
                    dh[b, j] = dh_rec[b, j]
    dh0[:] = dh


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one RNN layer; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, x.dtype
    bias = weights["bias_ih"] + weights["bias_hh"] if spec.bias else None
    xproj = input_projection(x, weights["weight_ih"], bias)
    slots = tape_length(steps, keep_tape)
    h_before = np.empty((slots, batch, hidden), dtype)
    h_after = np.empty((slots, batch, hidden), dtype)
    h_n = np.empty((batch, hidden), dtype)
    code = _NONLINEARITY_CODES[spec.nonlinearity]
    _forward_scan(xproj, np.ascontiguousarray(weights["weight_hh"].T), state0[0], lengths,
                  reverse, code, y, col0, h_before, h_after, h_n)
    if not keep_tape:
        return (h_n,), None
    return (h_n,), dict(x=x, lengths=lengths, reverse=reverse, h_before=h_before,
                        h_after=h_after)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x = tape["x"]
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, x.dtype
    d_pre = np.empty((steps, batch, hidden), dtype)
    dh0 = np.empty((batch, hidden), dtype)
    _backward_scan(dy, col0, dstate_n[0], weights["weight_hh"], tape["lengths"], tape["reverse"],
                   _NONLINEARITY_CODES[spec.nonlinearity], tape["h_after"], d_pre, dh0)
    accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx)
    accumulate_outer(grads["weight_hh"], d_pre, tape["h_before"])
    if spec.bias:
        bias_grad = column_sums(d_pre)
        grads["bias_ih"] += bias_grad
        grads["bias_hh"] += bias_grad
    return (dh0,)

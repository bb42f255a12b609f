"""CPU scans for the GRU, reset gate after (PyTorch) or before (Cho, d2l) the product.

Reset after: one GEMM per step, ``h_{t-1} @ W_hh^T`` for all three gates.
Reset before: two, ``h_{t-1} @ [W_hr; W_hz]^T`` and then ``(r * h_{t-1}) @ W_hn^T``.
The tape's ``q`` holds ``W_hn h + b_hn`` (after) or ``r * h`` (before): what the
backward pass needs for ``da_r`` and for ``grad W_hn`` respectively.
"""

import numpy as np

from ...cells.gru import (gru_backward_point, gru_gates_point, gru_output_point,
                          gru_reset_before_point)
from ._common import (accumulate_input_grads, accumulate_outer, column_sums, input_projection,
                      tape_length)
from ._jit import point_jit, scan_jit

_gates_point = point_jit(gru_gates_point)
_output_point = point_jit(gru_output_point)
_backward_point = point_jit(gru_backward_point)
_reset_before_point = point_jit(gru_reset_before_point)


@scan_jit
def _forward_scan(xproj, w_rec_t, whn_t, b_hn, h0, lengths, reverse, reset_after, y, col0,
                  h_before, gates, q_tape, h_n):
    steps, batch, _ = xproj.shape
    hidden = h0.shape[1]
    h = h0.copy()
    rec = np.empty((batch, w_rec_t.shape[1]), xproj.dtype)
    rh = np.zeros((batch, hidden), xproj.dtype)
    q_rec = np.empty((batch, hidden), xproj.dtype)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        k = t if gates.shape[0] == steps else 0
        np.dot(h, w_rec_t, rec)
        for b in range(batch):
            if t >= lengths[b]:
                continue
            for j in range(hidden):
                r, z = _gates_point(xproj[t, b, j] + rec[b, j],
                                    xproj[t, b, hidden + j] + rec[b, hidden + j])
                gates[k, b, j] = r
                gates[k, b, hidden + j] = z
                rh[b, j] = r * h[b, j]
        if not reset_after:
            np.dot(rh, whn_t, q_rec)
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(hidden):
                h_before[k, b, j] = h[b, j]
                if not valid:
                    q_tape[k, b, j] = 0.0
                    continue
                if reset_after:
                    q = rec[b, 2 * hidden + j] + b_hn[j]
                else:
                    q = q_rec[b, j] + b_hn[j]
                n, h_t = _output_point(xproj[t, b, 2 * hidden + j], q, gates[k, b, j],
                                       gates[k, b, hidden + j], h[b, j], reset_after)
                gates[k, b, 2 * hidden + j] = n
                q_tape[k, b, j] = q if reset_after else rh[b, j]
                h[b, j] = h_t
                y[t, b, col0 + j] = h_t
    h_n[:] = h


@scan_jit
def _backward_scan(dy, col0, dh_n, w_rec, whn, lengths, reverse, reset_after, h_before, gates,
                   q_tape, d_ih, d_hh, dh0):
    steps, batch, _ = d_ih.shape
    hidden = dh_n.shape[1]
    dh = dh_n.copy()
    dh_rec = np.empty((batch, hidden), d_ih.dtype)
    dh_direct = np.zeros((batch, hidden), d_ih.dtype)
    da_n = np.zeros((batch, hidden), d_ih.dtype)
    d_rh = np.empty((batch, hidden), d_ih.dtype)
    d_rz = np.zeros((batch, 2 * hidden), d_ih.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        for b in range(batch):
            if t >= lengths[b]:
                d_ih[t, b, :] = 0.0
                if reset_after:
                    d_hh[t, b, :] = 0.0
                da_n[b, :] = 0.0
                d_rz[b, :] = 0.0
                continue
            for j in range(hidden):
                da_r, da_z, da_n_j, dq, direct = _backward_point(
                    dh[b, j] + dy[t, b, col0 + j], gates[t, b, j], gates[t, b, hidden + j],
                    gates[t, b, 2 * hidden + j], h_before[t, b, j], q_tape[t, b, j],
                    reset_after)
                d_ih[t, b, j] = da_r
                d_ih[t, b, hidden + j] = da_z
                d_ih[t, b, 2 * hidden + j] = da_n_j
                if reset_after:
                    d_hh[t, b, j] = da_r
                    d_hh[t, b, hidden + j] = da_z
                    d_hh[t, b, 2 * hidden + j] = dq
                da_n[b, j] = da_n_j
                dh_direct[b, j] = direct
        if reset_after:
            np.dot(d_hh[t], w_rec, dh_rec)
        else:
            np.dot(da_n, whn, d_rh)
            for b in range(batch):
                if t >= lengths[b]:
                    continue
                for j in range(hidden):
                    da_r, dh_part = _reset_before_point(d_rh[b, j], gates[t, b, j],
                                                        h_before[t, b, j])
                    d_ih[t, b, j] = da_r
                    d_rz[b, j] = da_r
                    d_rz[b, hidden + j] = d_ih[t, b, hidden + j]
                    dh_direct[b, j] += dh_part
            np.dot(d_rz, w_rec, dh_rec)
        for b in range(batch):
            if t < lengths[b]:
                for j in range(hidden):
                    dh[b, j] = dh_rec[b, j] + dh_direct[b, j]
    dh0[:] = dh


def _recurrent_weights(spec, weights):
    """``(w_rec, whn)``: all of ``W_hh`` (after), or its r,z rows and its n rows (before)."""
    weight_hh = weights["weight_hh"]
    if spec.reset_after:
        return weight_hh, weight_hh[:0]
    hidden = spec.hidden_size
    return (np.ascontiguousarray(weight_hh[:2 * hidden]),
            np.ascontiguousarray(weight_hh[2 * hidden:]))


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one GRU layer; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, x.dtype
    if spec.bias:
        b_hh = weights["bias_hh"]
        bias = weights["bias_ih"].copy()
        bias[:2 * hidden] += b_hh[:2 * hidden]
        b_hn = np.ascontiguousarray(b_hh[2 * hidden:])
    else:
        bias, b_hn = None, np.zeros(hidden, dtype)
    xproj = input_projection(x, weights["weight_ih"], bias)
    w_rec, whn = _recurrent_weights(spec, weights)
    slots = tape_length(steps, keep_tape)
    h_before = np.empty((slots, batch, hidden), dtype)
    gates = np.empty((slots, batch, 3 * hidden), dtype)
    q_tape = np.empty((slots, batch, hidden), dtype)
    h_n = np.empty((batch, hidden), dtype)
    _forward_scan(xproj, np.ascontiguousarray(w_rec.T), np.ascontiguousarray(whn.T), b_hn,
                  state0[0], lengths, reverse, spec.reset_after, y, col0, h_before, gates,
                  q_tape, h_n)
    if not keep_tape:
        return (h_n,), None
    return (h_n,), dict(x=x, lengths=lengths, reverse=reverse, h_before=h_before, gates=gates,
                        q=q_tape)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, gates = tape["x"], tape["gates"]
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, x.dtype
    d_ih = np.empty_like(gates)
    d_hh = np.empty_like(gates) if spec.reset_after else np.empty((0, batch, 3 * hidden), dtype)
    dh0 = np.empty((batch, hidden), dtype)
    w_rec, whn = _recurrent_weights(spec, weights)
    _backward_scan(dy, col0, dstate_n[0], w_rec, whn, tape["lengths"], tape["reverse"],
                   spec.reset_after, tape["h_before"], gates, tape["q"], d_ih, d_hh, dh0)
    accumulate_input_grads(d_ih, x, weights["weight_ih"], grads["weight_ih"], dx)
    grad_hh = grads["weight_hh"]
    if spec.reset_after:
        accumulate_outer(grad_hh, d_hh, tape["h_before"])
    else:
        accumulate_outer(grad_hh[:2 * hidden], d_ih[:, :, :2 * hidden], tape["h_before"])
        accumulate_outer(grad_hh[2 * hidden:], d_ih[:, :, 2 * hidden:], tape["q"])
    if spec.bias:
        grads["bias_ih"] += column_sums(d_ih)
        grads["bias_hh"] += column_sums(d_hh if spec.reset_after else d_ih)
    return (dh0,)

"""CPU scans for the LSTM (peephole, coupled and projection variants included).

Per step the scan runs one GEMM ``h_{t-1} @ W_hh^T`` (and ``m_t @ W_hr^T`` with
a projection) and the fused pointwise math of :mod:`fastrnn.cells.lstm`. The
input projection and every weight gradient are single GEMMs outside the loop.
"""

import numpy as np

from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ._common import (accumulate_input_grads, accumulate_outer, column_sums, input_projection,
                      tape_length)
from ._jit import point_jit, scan_jit

_forward_point = point_jit(lstm_forward_point)
_backward_point = point_jit(lstm_backward_point)


@scan_jit
def _forward_scan(xproj, whh_t, whr_t, peep, h0, c0, lengths, reverse, coupled,
                  y, col0, h_before, c_before, c_after, gates, m_tape, h_n, c_n):
    steps, batch, _ = xproj.shape
    hidden = c0.shape[1]
    out = h0.shape[1]
    project = whr_t.shape[0] > 0
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    h = h0.copy()
    c = c0.copy()
    rec = np.empty((batch, xproj.shape[2]), xproj.dtype)
    m = np.zeros((batch, hidden), xproj.dtype)
    h_new = np.empty((batch, out), xproj.dtype) if project else m
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        k = t if gates.shape[0] == steps else 0
        np.dot(h, whh_t, rec)
        for b in range(batch):
            if t >= lengths[b]:
                continue
            for j in range(hidden):
                c_prev = c[b, j]
                a_i = 0.0 if coupled else xproj[t, b, j] + rec[b, j]
                i, f, g, o, c_t, m_t = _forward_point(
                    a_i, xproj[t, b, off_f + j] + rec[b, off_f + j],
                    xproj[t, b, off_g + j] + rec[b, off_g + j],
                    xproj[t, b, off_o + j] + rec[b, off_o + j],
                    c_prev, peep[0, j], peep[1, j], peep[2, j], coupled)
                if not coupled:
                    gates[k, b, j] = i
                gates[k, b, off_f + j] = f
                gates[k, b, off_g + j] = g
                gates[k, b, off_o + j] = o
                c_before[k, b, j] = c_prev
                c_after[k, b, j] = c_t
                c[b, j] = c_t
                m[b, j] = m_t
        if project:
            np.dot(m, whr_t, h_new)
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(out):
                h_before[k, b, j] = h[b, j]
                if valid:
                    h[b, j] = h_new[b, j]
                    y[t, b, col0 + j] = h_new[b, j]
            if m_tape.shape[0] == steps:
                for j in range(hidden):
                    m_tape[t, b, j] = m[b, j] if valid else 0.0
    h_n[:] = h
    c_n[:] = c


@scan_jit
def _backward_scan(dy, col0, dh_n, dc_n, whh, whr, peep, lengths, reverse, coupled,
                   c_before, c_after, gates, d_pre, dh_tape, d_peep, dh0, dc0):
    steps, batch, _ = d_pre.shape
    hidden = dc_n.shape[1]
    out = dh_n.shape[1]
    project = whr.shape[0] > 0
    off_f = 0 if coupled else hidden
    off_g = off_f + hidden
    off_o = off_g + hidden
    dh = dh_n.copy()
    dc = dc_n.copy()
    dh_total = np.zeros((batch, out), d_pre.dtype)
    dm = np.empty((batch, hidden), d_pre.dtype) if project else dh_total
    dh_rec = np.empty((batch, out), d_pre.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(out):
                dh_total[b, j] = dh[b, j] + dy[t, b, col0 + j] if valid else 0.0
                if project:
                    dh_tape[t, b, j] = dh_total[b, j]
        if project:
            np.dot(dh_total, whr, dm)
        for b in range(batch):
            if t >= lengths[b]:
                d_pre[t, b, :] = 0.0
                continue
            for j in range(hidden):
                f = gates[t, b, off_f + j]
                i = 1.0 - f if coupled else gates[t, b, j]
                c_prev = c_before[t, b, j]
                c_t = c_after[t, b, j]
                da_i, da_f, da_g, da_o, dc_prev = _backward_point(
                    dm[b, j], dc[b, j], i, f, gates[t, b, off_g + j], gates[t, b, off_o + j],
                    c_t, c_prev, peep[0, j], peep[1, j], peep[2, j], coupled)
                if not coupled:
                    d_pre[t, b, j] = da_i
                d_pre[t, b, off_f + j] = da_f
                d_pre[t, b, off_g + j] = da_g
                d_pre[t, b, off_o + j] = da_o
                dc[b, j] = dc_prev
                d_peep[0, j] += da_i * c_prev
                d_peep[1, j] += da_f * c_prev
                d_peep[2, j] += da_o * c_t
        np.dot(d_pre[t], whh, dh_rec)
        for b in range(batch):
            if t < lengths[b]:
                for j in range(out):
                    dh[b, j] = dh_rec[b, j]
    dh0[:] = dh
    dc0[:] = dc


def _peephole_rows(spec, weights, dtype):
    """Peephole weights as three rows (i, f, o), zeros where absent."""
    rows = np.zeros((3, spec.hidden_size), dtype)
    if spec.peephole:
        if spec.coupled:
            rows[1:] = weights["weight_ch"]
        else:
            rows[:] = weights["weight_ch"]
    return rows


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one LSTM layer.

    Parameters
    ----------
    spec : CellSpec
    weights : dict of str to ndarray
        This direction's parameters without the layer suffix (``weight_ih``...).
    x : ndarray, shape (T, B, I), C-contiguous
    state0 : tuple of ndarray
        ``(h0, c0)`` of shapes (B, P) and (B, H).
    lengths : ndarray of int64, shape (B,)
    reverse : bool
    keep_tape : bool
        Keep what :func:`backward` needs (training) or only O(B*H) scratch.
    y : ndarray, shape (T, B, D*P)
        Output of the layer; this direction writes columns ``col0:col0+P``.
    col0 : int

    Returns
    -------
    state_n : tuple of ndarray
        ``(h_n, c_n)``.
    tape : dict or None
    """
    steps, batch, _ = x.shape
    hidden, out, dtype = spec.hidden_size, spec.output_size, x.dtype
    bias = weights["bias_ih"] + weights["bias_hh"] if spec.bias else None
    xproj = input_projection(x, weights["weight_ih"], bias)
    project = spec.proj_size > 0
    whr_t = (np.ascontiguousarray(weights["weight_hr"].T) if project
             else np.empty((0, 0), dtype))
    slots = tape_length(steps, keep_tape)
    h_before = np.empty((slots, batch, out), dtype)
    c_before = np.empty((slots, batch, hidden), dtype)
    c_after = np.empty((slots, batch, hidden), dtype)
    gates = np.empty((slots, batch, xproj.shape[2]), dtype)
    m_tape = np.empty((slots if project else 1, batch, hidden), dtype)
    h_n = np.empty((batch, out), dtype)
    c_n = np.empty((batch, hidden), dtype)
    _forward_scan(xproj, np.ascontiguousarray(weights["weight_hh"].T), whr_t,
                  _peephole_rows(spec, weights, dtype), state0[0], state0[1], lengths,
                  reverse, spec.coupled, y, col0, h_before, c_before, c_after, gates, m_tape,
                  h_n, c_n)
    if not keep_tape:
        return (h_n, c_n), None
    tape = dict(x=x, lengths=lengths, reverse=reverse, h_before=h_before, c_before=c_before,
                c_after=c_after, gates=gates, m=m_tape if project else None)
    return (h_n, c_n), tape


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx):
    """Backward of :func:`forward`; accumulates into ``grads`` and ``dx``.

    Parameters
    ----------
    spec, weights : as for :func:`forward`
    grads : dict of str to ndarray
        Gradient buffers, same keys and shapes as ``weights``; added to.
    tape : dict
        From :func:`forward` with ``keep_tape=True``.
    dy : ndarray, shape (T, B, D*P)
        Gradient of the layer output; this direction reads ``col0:col0+P``.
    col0 : int
    dstate_n : tuple of ndarray
        ``(dh_n, dc_n)``.
    dx : ndarray, shape (T, B, I)
        Input gradient, added to.

    Returns
    -------
    tuple of ndarray
        ``(dh0, dc0)``.
    """
    x, gates = tape["x"], tape["gates"]
    steps, batch, _ = x.shape
    hidden, out, dtype = spec.hidden_size, spec.output_size, x.dtype
    project = spec.proj_size > 0
    d_pre = np.empty_like(gates)
    dh_tape = np.empty((steps if project else 1, batch, out), dtype)
    d_peep = np.zeros((3, hidden), dtype)
    dh0 = np.empty((batch, out), dtype)
    dc0 = np.empty((batch, hidden), dtype)
    whr = weights["weight_hr"] if project else np.empty((0, 0), dtype)
    _backward_scan(dy, col0, dstate_n[0], dstate_n[1], weights["weight_hh"], whr,
                   _peephole_rows(spec, weights, dtype), tape["lengths"], tape["reverse"],
                   spec.coupled, tape["c_before"], tape["c_after"], gates, d_pre, dh_tape,
                   d_peep, dh0, dc0)
    accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx)
    accumulate_outer(grads["weight_hh"], d_pre, tape["h_before"])
    if spec.bias:
        bias_grad = column_sums(d_pre)
        grads["bias_ih"] += bias_grad
        grads["bias_hh"] += bias_grad
    if project:
        accumulate_outer(grads["weight_hr"], dh_tape, tape["m"])
    if spec.peephole:
        grads["weight_ch"] += d_peep[1:] if spec.coupled else d_peep
    return dh0, dc0

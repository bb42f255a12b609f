"""CPU scans for the LSTM (peephole, coupled and projection variants included).

Per step the scan runs one register-tiled product (:mod:`._strips`): ``h_{t-1}
@ W_hh^T`` added to the step's rows of an input projection computed before the
loop, or, for a dense input whose ``W_ih`` is small, ``[1, x_t, h_{t-1}] @
[bias; W_ih^T; W_hh^T]`` (and ``m_t @ W_hr^T`` with a projection), then the
fused pointwise math of :mod:`fastrnn.cells.lstm`. The weight gradients are
summed after the loop.

States live in time-aligned buffers (:func:`~._common.state_buffer`): each step
reads one slot and writes another, never updating an array in place, which is
what lets LLVM vectorise the pointwise loops.
"""

import numpy as np
from numba import prange

from ... import _memory, config
from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ._common import (accumulate_input_grads, accumulate_outer, add_into, add_to, bias_gradient,
                      block_sums,
                      entering_states, error_guard, final_slot, guard_step_error,
                      input_in_scan, input_projection, is_tokens, joined_buffer,
                      recurrent_product, row_index, run_scan, scan_inputs,
                      scratch, state_buffer, step_slots, step_sums, tape_length, token_table,
                      weight_panel, zero_index)
from ._gemm import SPLIT, batch_block, split_project
from ._jit import inline_jit, par_jit, point_jit, row_jit, scan_jit, unowned
from ._strips import joined_parts
from ._threads import (batch_blocks, blas_threads_for, note_scan_pool, single_blas_thread,
                       unit_chunk, use_parallel_scan)
from . import lstm_threaded

_forward_point = point_jit(lstm_forward_point)
_backward_point = point_jit(lstm_backward_point)


@inline_jit
def _gate_offsets(hidden, coupled):
    """Offsets of gates f, g and o in a row of pre-activations (i, when there is
    one, at 0)."""
    off_f = 0 if coupled else hidden
    return off_f, off_f + hidden, off_f + 2 * hidden


@row_jit
def _forward_row(pre, gates, c_prev, c_next, m, p_i, p_f, p_o, coupled, one, y):
    """Pointwise forward of one sequence's row, its gates stored to ``gates`` (a row of
    the tape, or for inference a scratch row of the scan's own) and ``m`` also to
    ``y`` (the output row, stored in this loop rather than copied after it; a
    scratch row with a projection).

    The stores are unconditional. Under a ``keep`` flag LLVM made them masked
    vector stores with an all-false mask, and those take a microcode assist on
    every store while their target pages have never been touched, as a pooled
    tape that inference never writes: the (100, 64, 128, 256) forward scan took
    50 against 19-21 ms, in most processes.
    """
    hidden = c_prev.shape[0]
    off_f, off_g, off_o = _gate_offsets(hidden, coupled)
    for j in range(hidden):
        i, f, g, o, c_t, m_t = _forward_point(
            pre[j], pre[off_f + j], pre[off_g + j], pre[off_o + j], c_prev[j], p_i[j], p_f[j],
            p_o[j], coupled, one)
        if not coupled:
            gates[j] = i
        gates[off_f + j] = f
        gates[off_g + j] = g
        gates[off_o + j] = o
        c_next[j] = c_t
        m[j] = m_t
        y[j] = m_t


@row_jit
def _backward_row(dm, dc_next, gates, c_before, c_after, p_i, p_f, p_o, coupled, one, d_pre,
                  dc_prev):
    hidden = c_before.shape[0]
    off_f, off_g, off_o = _gate_offsets(hidden, coupled)
    for j in range(hidden):
        f = gates[off_f + j]
        i = one - f if coupled else gates[j]
        da_i, da_f, da_g, da_o, dc_p = _backward_point(
            dm[j], dc_next[j], i, f, gates[off_g + j], gates[off_o + j], c_after[j],
            c_before[j], p_i[j], p_f[j], p_o[j], coupled, one)
        if not coupled:
            d_pre[j] = da_i
        d_pre[off_f + j] = da_f
        d_pre[off_g + j] = da_g
        d_pre[off_o + j] = da_o
        dc_prev[j] = dc_p


@scan_jit
def _forward_rows(xproj, x, panel, whr_t, peep, lengths, reverse, keep, coupled, y, col0, hs, cs,
                  gates, m_tape, b0, b1):
    """Forward scan of the sequences ``b0:b1`` (each one independent of the others).

    The sums of a step's pre-activations start from its input ones, ``xproj``
    (T, B, G), and add the terms of ``h_{t-1} @ W_hh.T``, ``panel`` holding
    ``W_hh.T``; or, when ``x`` (T, B, I) has features, they are one product
    of the row ``[1, x_t, h_{t-1}]`` and ``panel``, which then holds ``[bias;
    W_ih.T; W_hh.T]`` (:func:`~._strips.joined_panel`): the bias first (``0 + 1 * bias``
    is exact), then the input's terms and the state's, all in one sweep over
    the panel (no (T, B, G) projection written and read back, nor the bias
    copied into every row). Both are the order of
    :func:`.lstm_threaded.forward_scan`, so every mode gives the same bits
    and one-hot input equals token ids bit for bit. ``whr_t`` is ``W_hr.T``
    (:func:`weight_panel`). See :func:`forward`.
    """
    xproj, x, panel, whr_t = unowned(xproj), unowned(x), unowned(panel), unowned(whr_t)
    peep, lengths, y, hs = unowned(peep), unowned(lengths), unowned(y), unowned(hs)
    cs, gates, m_tape = unowned(cs), unowned(gates), unowned(m_tape)
    steps = xproj.shape[0]
    hidden = cs.shape[2]
    out = hs.shape[2]
    rows = b1 - b0
    project = whr_t.shape[0] > 0
    one = np.ones(1, xproj.dtype)[0]
    p_i, p_f, p_o = peep[0], peep[1], peep[2]
    width = gates.shape[2]
    rec = np.empty((rows, width), xproj.dtype)
    m = np.zeros((rows, hidden), xproj.dtype)
    gate_sink = np.empty(width, xproj.dtype)   # inference: each row's gates, then dropped
    y_sink = np.empty(hidden, xproj.dtype)     # projection: y is h = W_hr m, stored later
    joined = joined_buffer(rows, x, out, xproj.dtype)
    for s in range(steps):
        t, before, after = step_slots(s, steps, reverse, keep)
        k = t if keep else 0
        h_prev, c_prev = hs[before, b0:b1], cs[before, b0:b1]
        h_next, c_next = hs[after, b0:b1], cs[after, b0:b1]
        sums = step_sums(xproj, x, t, b0, b1, h_prev, panel, joined, rec)
        for i in range(rows):
            if t >= lengths[b0 + i]:
                c_next[i] = c_prev[i]
                continue
            _forward_row(sums[i], gates[k, b0 + i] if keep else gate_sink, c_prev[i], c_next[i],
                         m[i] if project else h_next[i], p_i, p_f, p_o, coupled, one,
                         y_sink if project else y[t, b0 + i, col0:col0 + out])
        if project:
            recurrent_product(m, whr_t, h_next)
        for i in range(rows):
            b = b0 + i
            valid = t < lengths[b]
            if not valid:
                h_next[i] = h_prev[i]
            elif project:
                y[t, b, col0:col0 + out] = h_next[i]
            if project and keep:
                if valid:
                    m_tape[t, b] = m[i]
                else:
                    m_tape[t, b] = 0.0


@par_jit
def _forward_blocks(xproj, x, panel, whr_t, peep, lengths, reverse, keep, coupled, y, col0, hs, cs,
                    gates, m_tape, blocks):
    batch = xproj.shape[1]
    for part in prange(blocks):
        _forward_rows(xproj, x, panel, whr_t, peep, lengths, reverse, keep, coupled, y, col0, hs,
                      cs, gates, m_tape, *batch_block(part, blocks, batch))


@scan_jit
def _backward_rows(dy, col0, dh_n, dc_n, whh, whr, lengths, reverse, coupled, peep, cs, gates,
                   d_pre, dh_tape, dh0, dc0, sums, clip, norms, b0, b1):
    """Backward scan of the sequences ``b0:b1``; with columns in ``sums`` (B, G), its
    row ``b0`` gets the block's sums of ``d_pre`` (:func:`~._common.block_sums`)."""
    dy, dh_n, dc_n, whh = unowned(dy), unowned(dh_n), unowned(dc_n), unowned(whh)
    whr, lengths, peep, cs = unowned(whr), unowned(lengths), unowned(peep), unowned(cs)
    gates, d_pre, dh_tape, dh0 = unowned(gates), unowned(d_pre), unowned(dh_tape), unowned(dh0)
    dc0, sums, norms = unowned(dc0), unowned(sums), unowned(norms)
    steps = d_pre.shape[0]
    hidden = dc_n.shape[1]
    out = dh_n.shape[1]
    rows = b1 - b0
    project = whr.shape[0] > 0
    one = np.ones(1, d_pre.dtype)[0]
    p_i, p_f, p_o = peep[0], peep[1], peep[2]
    dh = dh_n[b0:b1].copy()
    dc_next = dc_n[b0:b1].copy()
    dc_prev = np.empty_like(dc_next)
    dh_total = np.zeros((rows, out), d_pre.dtype)
    dm = np.empty((rows, hidden), d_pre.dtype) if project else dh_total
    dh_rec = np.empty((rows, out), d_pre.dtype)
    shortest = lengths[b0:b1].min()
    totals = np.zeros(sums.shape[1], d_pre.dtype)
    for s in range(steps):
        t, before, after = step_slots(steps - 1 - s, steps, reverse, True)
        for i in range(rows):
            if t < lengths[b0 + i]:
                add_into(dh[i], dy[t, b0 + i, col0:col0 + out], dh_total[i])
            else:
                dh_total[i] = 0.0
        if clip > 0.0 or norms.shape[0] > 0:
            guard_step_error(dh_total, t, lengths, clip, norms, b0)
        if project:
            dh_tape[t, b0:b1] = dh_total
            recurrent_product(dh_total, whr, dm)
        for i in range(rows):
            b = b0 + i
            if t >= lengths[b]:
                d_pre[t, b] = 0.0
                dc_prev[i] = dc_next[i]
                continue
            _backward_row(dm[i], dc_next[i], gates[t, b], cs[before, b], cs[after, b], p_i, p_f,
                          p_o, coupled, one, d_pre[t, b], dc_prev[i])
            if totals.shape[0] > 0:
                add_to(totals, d_pre[t, b])
        recurrent_product(d_pre[t, b0:b1], whh, dh_rec)
        if t < shortest:
            dh, dh_rec = dh_rec, dh
        else:
            for i in range(rows):
                if t < lengths[b0 + i]:
                    dh[i] = dh_rec[i]
        dc_next, dc_prev = dc_prev, dc_next
    dh0[b0:b1] = dh
    dc0[b0:b1] = dc_next
    if rows > 0:
        sums[b0] = totals


@par_jit
def _backward_blocks(dy, col0, dh_n, dc_n, whh, whr, lengths, reverse, coupled, peep, cs,
                     gates, d_pre, dh_tape, dh0, dc0, sums, clip, norms, blocks):
    batch = d_pre.shape[1]
    for part in prange(blocks):
        _backward_rows(dy, col0, dh_n, dc_n, whh, whr, lengths, reverse, coupled, peep, cs,
                       gates, d_pre, dh_tape, dh0, dc0, sums, clip, norms,
                       *batch_block(part, blocks, batch))


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
    hidden, dtype = spec.hidden_size, y.dtype
    bias = weights["bias_ih"] + weights["bias_hh"] if spec.bias else None
    project = spec.proj_size > 0
    slots = tape_length(steps, keep_tape)
    hs = state_buffer(state0[0], steps, keep_tape, reverse)
    cs = state_buffer(state0[1], steps, keep_tape, reverse)
    peep = _peephole_rows(spec, weights, dtype)
    # inference keeps no gates: a tape without rows (the scans never index it then)
    gates = _memory.empty((slots, batch if keep_tape else 0, weights["weight_ih"].shape[0]), dtype)
    mode = _scan_mode(spec, batch, dtype)
    if mode == "units":
        with single_blas_thread():
            wih, whh = weights["weight_ih"], weights["weight_hh"]
            x_in_scan = np.empty((steps, batch, 0), dtype)
            no_columns = np.empty((whh.shape[0], 0), dtype)
            parts = (no_columns, no_columns, np.ascontiguousarray(whh))
            if is_tokens(x):
                xtable, xindex = token_table(wih, bias), x.reshape(steps, batch)
            elif input_in_scan(x, wih):
                xtable, xindex = np.empty((0, 0), dtype), zero_index(steps, batch)
                x_in_scan, parts = x, joined_parts(bias, wih, whh)
            else:
                xproj = input_projection(x, wih, bias, split_project)
                xtable, xindex = xproj.reshape(steps * batch, -1), row_index(steps, batch)
            lstm_threaded.forward_scan(xtable, xindex, x_in_scan, *parts, peep, lengths, reverse,
                                       keep_tape, spec.coupled, y, col0, hs, cs, gates,
                                       unit_chunk(hidden))
        m_tape = None
    else:
        blocks = SPLIT if mode == "blocks" else 1
        whr_t = (weight_panel(weights["weight_hr"], transpose=True) if project
                 else np.empty((0, 0), dtype))
        m_tape = _memory.empty((slots if project else 1, batch, hidden), dtype)
        args = (whr_t, peep, lengths, reverse, keep_tape, spec.coupled, y, col0, hs, cs, gates,
                m_tape)
        with blas_threads_for(blocks > 1):
            inputs = scan_inputs(x, weights["weight_ih"], weights["weight_hh"], bias, blocks)
            run_scan(blocks, _forward_blocks, _forward_rows, batch, *inputs, *args)
    last = final_slot(steps, keep_tape, reverse)
    state_n = (hs[last].copy(), cs[last].copy())
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths, reverse=reverse, hs=hs, cs=cs, gates=gates,
                         m=m_tape if project else None)


def _scan_mode(spec, batch, dtype):
    """How this layer's scans use the threads.

    ``"blocks"``: each numba thread runs the whole scan for a block of
    sequences (:func:`~._threads.batch_blocks`), when there is a projection,
    or ``W_hh`` is small enough for every core to keep all of it, or the
    blocks are large (:data:`fastrnn.config.SPLIT_MAX_WEIGHT_BYTES`,
    :data:`~fastrnn.config.LSTM_SPLIT_MIN_ROWS`); ``"units"``:
    :mod:`.lstm_threaded`, each numba thread owning a block of hidden units;
    ``"serial"``: one scan, BLAS's threads for its products.
    """
    gate_rows = (3 if spec.coupled else 4) * spec.hidden_size
    work = batch * gate_rows * spec.output_size
    blocks = batch_blocks(work, batch)
    weight_bytes = gate_rows * spec.output_size * dtype.itemsize
    batch_wins = (spec.proj_size > 0 or weight_bytes <= config.SPLIT_MAX_WEIGHT_BYTES
                  or batch >= blocks * config.LSTM_SPLIT_MIN_ROWS)
    if blocks > 1 and batch_wins:
        mode = "blocks"
    elif spec.proj_size == 0 and use_parallel_scan(work, batch):
        mode = "units"
    else:
        mode = "serial"
    note_scan_pool(mode != "serial")
    return mode


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
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
    dx : ndarray, shape (T, B, I), C-contiguous, or None
        Input gradient, added to; None: not computed (``input_grad=False``).
    error_clip : float or None
        Per-step error clipping: the gradient reaching ``h_t`` of each sequence
        is scaled to 2-norm ``error_clip`` wherever it is longer, at every step.
    error_norms : ndarray of float64, shape (T, B), or None
        Receives the 2-norm of the gradient reaching ``h_t`` (before clipping)
        of every valid step of every sequence.

    Returns
    -------
    tuple of ndarray
        ``(dh0, dc0)``.
    """
    x, gates, cs, reverse = tape["x"], tape["gates"], tape["cs"], tape["reverse"]
    steps, batch, _ = x.shape
    hidden, out, dtype = spec.hidden_size, spec.output_size, gates.dtype
    project = spec.proj_size > 0
    d_pre = scratch("d_pre", gates.shape, dtype)
    dh0 = np.empty((batch, out), dtype)
    dc0 = np.empty((batch, hidden), dtype)
    peep = _peephole_rows(spec, weights, dtype)
    guard = error_guard(error_clip, error_norms)
    mode = _scan_mode(spec, batch, dtype)
    split = mode != "serial"
    blocks = SPLIT if mode == "blocks" else 1
    sums = np.empty((batch, gates.shape[2] if spec.bias and mode != "units" else 0), dtype)
    with blas_threads_for(split):
        if mode == "units":
            lstm_threaded.backward_scan(dy, col0, dstate_n[0], dstate_n[1], weights["weight_hh"],
                                        tape["lengths"], reverse, spec.coupled, peep, cs, gates,
                                        d_pre, dh0, dc0, unit_chunk(hidden), *guard)
        else:
            dh_tape = scratch("dh_tape", (steps if project else 1, batch, out), dtype)
            whr = weight_panel(weights["weight_hr"]) if project else np.empty((0, 0), dtype)
            args = (dy, col0, dstate_n[0], dstate_n[1], weight_panel(weights["weight_hh"]), whr,
                    tape["lengths"], reverse, spec.coupled, peep, cs, gates, d_pre, dh_tape, dh0,
                    dc0, sums, *guard)
            run_scan(blocks, _backward_blocks, _backward_rows, batch, *args)
            if project:
                accumulate_outer(grads["weight_hr"], dh_tape, tape["m"], split)
        token_sums = accumulate_input_grads(
            d_pre, x, weights["weight_ih"], grads["weight_ih"], dx, split,
            recurrent=(grads["weight_hh"], entering_states(tape["hs"], reverse)))
    if spec.bias:   # summed in the scan, but by the unit-split one
        bias_grad = (bias_gradient(d_pre, token_sums) if mode == "units"
                     else block_sums(sums, blocks))
        grads["bias_ih"] += bias_grad
        grads["bias_hh"] += bias_grad
    if spec.peephole:
        grads["weight_ch"] += _peephole_grads(spec, d_pre, cs, reverse)
    return dh0, dc0


def _peephole_grads(spec, d_pre, cs, reverse):
    """Peephole gradients: i and f read the entering cell state, o the leaving one."""
    hidden = spec.hidden_size
    c_before = entering_states(cs, reverse)
    c_after = cs[:-1] if reverse else cs[1:]
    rows = [] if spec.coupled else [(0, c_before)]
    off_f = 0 if spec.coupled else hidden
    rows += [(off_f, c_before), (off_f + 2 * hidden, c_after)]
    return np.stack([(d_pre[:, :, off:off + hidden] * states).sum(axis=(0, 1))
                     for off, states in rows])

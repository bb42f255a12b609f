"""CPU scans for the GRU, reset gate after (PyTorch) or before (Cho, d2l) the product.

Reset after: one GEMM per step, ``h_{t-1} @ W_hh^T`` for all three gates.
Reset before: two, ``h_{t-1} @ [W_hr; W_hz]^T`` and then ``(r * h_{t-1}) @ W_hn^T``.
Both add the step's rows of an input projection computed before the scan; or,
for a dense input passing :func:`~._common.input_in_scan`, the step computes
its input's terms itself, as the LSTM's and the RNN's do, from the rows
``[1, x_t, h_{t-1}]`` (:func:`~._common.join_rows`): the r and z gates' sums
whole, ``[1, x_t, h_{t-1}] @ [b_r, b_z; W_ir^T, W_iz^T; W_hr^T, W_hz^T]``, and
the candidate's input term ``[1, x_t] @ [b_in; W_in^T]`` from the same rows'
first ``1 + I`` columns (it must stay apart from ``W_hn h``, which the reset
gate scales).
The tape's ``q`` holds ``W_hn h + b_hn`` (after) or ``r * h`` (before): what the
backward pass needs for ``da_r`` and for ``grad W_hn`` respectively.
"""

import numpy as np
from numba import prange

from ... import _memory
from ...cells.gru import (gru_backward_point, gru_gates_point, gru_output_point,
                          gru_reset_before_point)
from ._common import (accumulate_input_grads, accumulate_outer, add_to, block_sums,
                      entering_states, error_guard, final_slot, guarded_output_grad, join_rows,
                      joined_buffer, recurrent_product, run_scan, scan_input,
                      scratch, state_buffer, step_slots, tape_length, weight_panel)
from ._gemm import batch_block
from ._jit import inline_jit, par_jit, point_jit, row_jit, scan_jit, unowned
from ._strips import joined_panel, leading_strip_product, strip_product, strip_product_add
from ._threads import batch_blocks, blas_threads_for, note_scan_pool

_gates_point = point_jit(gru_gates_point)
_output_point = point_jit(gru_output_point)
_backward_point = point_jit(gru_backward_point)
_reset_before_point = point_jit(gru_reset_before_point)


# Pointwise loops over one row, out of line so that LLVM vectorises them (as
# :func:`.lstm._forward_row`): every operand a 1-D slice of its own, the
# ``reset_after`` branch outside the loop. Inlined into the scans with offsets
# into shared rows, the GRU's loops stayed scalar (GRU (100, 64, 128, 256)
# forward+backward: see docs/benchmarks.md).
@row_jit
def _gates_row(a_r, a_z, p_r, p_z, h_prev, one, r, z, rh):
    """``r``, ``z`` from input (``a_*``) and recurrent (``p_*``) pre-activations, and
    ``r * h_{t-1}``."""
    for j in range(h_prev.shape[0]):
        r_j, z_j = _gates_point(a_r[j] + p_r[j], a_z[j] + p_z[j], one)
        r[j] = r_j
        z[j] = z_j
        rh[j] = r_j * h_prev[j]


@row_jit
def _joined_gates_row(s_r, s_z, h_prev, one, r, z, rh):
    """:func:`_gates_row` from whole pre-activations ``s_*`` (the joined product's)."""
    for j in range(h_prev.shape[0]):
        r_j, z_j = _gates_point(s_r[j], s_z[j], one)
        r[j] = r_j
        z[j] = z_j
        rh[j] = r_j * h_prev[j]


@row_jit
def _output_row(a_n, q_in, b_hn, r, z, h_prev, rh, one, n, q, h_next, y):
    """Reset before: candidate ``n`` and new state, to ``h_next`` and the output row
    ``y``, from ``q_in + b_hn`` (``W_hn (r * h)``); the tape's ``q`` gets ``r * h``.
    ``y`` is stored in this loop, not copied after it: 397 against 319 ns a row
    of 256, in cache."""
    for j in range(h_prev.shape[0]):
        n_j, h_j = _output_point(a_n[j], q_in[j] + b_hn[j], r[j], z[j], h_prev[j], False, one)
        n[j] = n_j
        h_next[j] = h_j
        y[j] = h_j
        q[j] = rh[j]


@inline_jit
def _after_point(s_r, s_z, a_n, q_in, b_hn, h_prev, one):
    """Reset after, one element of a step: ``(r, z, n, h, q)`` from the gates' whole
    pre-activations ``s_*``, ``a_n = W_in x + b_in`` and ``q = q_in + b_hn``."""
    r, z = _gates_point(s_r, s_z, one)
    q = q_in + b_hn
    n, h = _output_point(a_n, q, r, z, h_prev, True, one)
    return r, z, n, h, q


@row_jit
def _after_row(a_r, a_z, p_r, p_z, a_n, q_in, b_hn, h_prev, joined, one, r, z, n, q, h_next, y):
    """Reset after: a whole step of one row in one loop (:func:`_after_point`), the
    gates' pre-activations ``a_* + p_*`` (when ``joined``, ``p_*`` alone, the
    joined product's), to ``r, z, n``, the tape's ``q`` (``W_hn h + b_hn``),
    ``h_next`` and ``y``.

    One loop instead of two (the gates' and the output's, as reset before
    needs, with ``W_hn (r * h)`` between them): no ``r * h_{t-1}``, the gates
    kept in registers, one call a row. GRU (100, 64, 128, 256), one thread,
    ms, forward+backward 102.98 against 104.00 (inference 36.84 against
    37.07). Same arithmetic, same bits."""
    if joined:
        for j in range(h_prev.shape[0]):
            r[j], z[j], n[j], h_j, q[j] = _after_point(p_r[j], p_z[j], a_n[j], q_in[j], b_hn[j],
                                                       h_prev[j], one)
            h_next[j] = h_j
            y[j] = h_j
    else:
        for j in range(h_prev.shape[0]):
            r[j], z[j], n[j], h_j, q[j] = _after_point(a_r[j] + p_r[j], a_z[j] + p_z[j], a_n[j],
                                                       q_in[j], b_hn[j], h_prev[j], one)
            h_next[j] = h_j
            y[j] = h_j


@row_jit
def _backward_row(dh, dy, r, z, n, h_prev, q, reset_after, one, da_r, da_z, da_n, dq, da_n_copy,
                  direct):
    """Backward of one row up to the products: pre-activation gradients, ``dq`` (the
    gradient of ``W_hn h + b_hn``, after) or a copy of ``da_n`` (before), and
    ``dh * z``."""
    if reset_after:
        for j in range(dh.shape[0]):
            da_r[j], da_z[j], da_n[j], dq[j], direct[j] = _backward_point(
                dh[j] + dy[j], r[j], z[j], n[j], h_prev[j], q[j], True, one)
    else:
        for j in range(dh.shape[0]):
            da_r[j], da_z[j], da_n[j], _, direct[j] = _backward_point(
                dh[j] + dy[j], r[j], z[j], n[j], h_prev[j], q[j], False, one)
            da_n_copy[j] = da_n[j]


@row_jit
def _reset_before_row(d_rh, r, h_prev, one, da_r, dh_part):
    """Reset before: ``da_r`` and the part of ``dL/dh_{t-1}`` through ``r * h_{t-1}``."""
    for j in range(d_rh.shape[0]):
        da_r[j], dh_part[j] = _reset_before_point(d_rh[j], r[j], h_prev[j], one)


@row_jit
def _sum_row(a, b, c, out):
    """``out = a + b + c``, summed left to right."""
    for j in range(out.shape[0]):
        out[j] = a[j] + b[j] + c[j]


@scan_jit
def _joined_sums(x_t, h_prev, rz_panel, nx_panel, whn_t, reset_after, joined, rec):
    """A step's sums from the joined rows into ``rec`` (rows, 4H): the r and z gates'
    pre-activations, ``W_hn h_{t-1}`` (reset after; before, the scan adds
    ``W_hn (r * h_{t-1})`` later) and the candidate's input term ``b_in + W_in x_t``."""
    hidden = h_prev.shape[1]
    join_rows(x_t, h_prev, joined)
    strip_product(joined, rz_panel, 2 * hidden, rec, 0)
    if reset_after:
        strip_product(h_prev, whn_t, hidden, rec, 2 * hidden)
    leading_strip_product(joined, 1 + x_t.shape[1], nx_panel, hidden, rec, 3 * hidden)


@scan_jit
def _forward_rows(xproj, x, w_rec_t, whn_t, nx_panel, b_hn, lengths, reverse, keep, reset_after,
                  y, col0, hs, gates, q_tape, b0, b1):
    """Forward scan of the sequences ``b0:b1`` (each one independent of the others).

    With an input projection ``xproj`` (T, B, 3H) (``x`` without features),
    ``w_rec_t`` and ``whn_t`` are the transposed weights of
    :func:`_recurrent_weights`. With features in ``x`` (T, B, I), no projection:
    ``w_rec_t`` packs ``[b_rz; W_i(rz)^T; W_h(rz)^T]``, ``whn_t`` ``W_hn^T`` and
    ``nx_panel`` ``[b_in; W_in^T]`` (:func:`_joined_sums`)."""
    xproj, x, w_rec_t, whn_t = unowned(xproj), unowned(x), unowned(w_rec_t), unowned(whn_t)
    nx_panel, b_hn, lengths, y = unowned(nx_panel), unowned(b_hn), unowned(lengths), unowned(y)
    hs, gates, q_tape = unowned(hs), unowned(gates), unowned(q_tape)
    steps = x.shape[0]
    hidden = hs.shape[2]
    rows = b1 - b0
    dtype = hs.dtype
    one = np.ones(1, dtype)[0]
    in_scan = x.shape[2] > 0
    rec = np.empty((rows, (4 if in_scan else 3 if reset_after else 2) * hidden), dtype)
    joined = joined_buffer(rows, x, hidden, dtype)
    rh = np.zeros((rows, hidden), dtype)
    q_rec = np.empty((rows, hidden), dtype)
    for s in range(steps):
        t, before, after = step_slots(s, steps, reverse, keep)
        k = t if keep else 0
        if in_scan:
            _joined_sums(x[t, b0:b1], hs[before, b0:b1], w_rec_t, nx_panel, whn_t, reset_after,
                         joined, rec)
        else:
            recurrent_product(hs[before, b0:b1], w_rec_t, rec)
        if not reset_after:   # the gates, then W_hn (r * h_{t-1})
            for i in range(rows):
                b = b0 + i
                if t >= lengths[b]:
                    continue
                p, g = rec[i], gates[k, b]
                if in_scan:
                    _joined_gates_row(p[:hidden], p[hidden:2 * hidden], hs[before, b], one,
                                      g[:hidden], g[hidden:2 * hidden], rh[i])
                else:
                    a = xproj[t, b]
                    _gates_row(a[:hidden], a[hidden:2 * hidden], p[:hidden],
                               p[hidden:2 * hidden], hs[before, b], one, g[:hidden],
                               g[hidden:2 * hidden], rh[i])
            recurrent_product(rh, whn_t, q_rec)
        for i in range(rows):
            b = b0 + i
            h_row, out_row = hs[before, b], hs[after, b]
            if t >= lengths[b]:
                out_row[:] = h_row
                q_tape[k, b] = 0.0
                continue
            p, g = rec[i], gates[k, b]
            a = p if in_scan else xproj[t, b]   # joined: the gates' sums are p's alone
            a_n = p[3 * hidden:] if in_scan else a[2 * hidden:]
            y_row = y[t, b, col0:col0 + hidden]
            if reset_after:
                _after_row(a[:hidden], a[hidden:2 * hidden], p[:hidden], p[hidden:2 * hidden],
                           a_n, p[2 * hidden:3 * hidden], b_hn, h_row, in_scan, one,
                           g[:hidden], g[hidden:2 * hidden], g[2 * hidden:], q_tape[k, b],
                           out_row, y_row)
            else:
                _output_row(a_n, q_rec[i], b_hn, g[:hidden], g[hidden:2 * hidden], h_row, rh[i],
                            one, g[2 * hidden:], q_tape[k, b], out_row, y_row)


@par_jit
def _forward_blocks(xproj, x, w_rec_t, whn_t, nx_panel, b_hn, lengths, reverse, keep,
                    reset_after, y, col0, hs, gates, q_tape, blocks):
    batch = x.shape[1]
    for part in prange(blocks):
        _forward_rows(xproj, x, w_rec_t, whn_t, nx_panel, b_hn, lengths, reverse, keep,
                      reset_after, y, col0, hs, gates, q_tape, *batch_block(part, blocks, batch))


@scan_jit
def _backward_rows(dy, col0, dh_n, w_rz, whn, lengths, reverse, reset_after, hs, gates,
                   q_tape, d_ih, d_q, dh0, sums, clip, norms, b0, b1):
    """Backward scan of the sequences ``b0:b1``.

    ``d_ih`` (T, B, 3H) gets the input pre-activations' gradients and, reset
    after, ``d_q`` (T, B, H) the gradients of ``W_hn h + b_hn``: the recurrent
    pre-activations' r and z columns are ``d_ih``'s, read in place, so
    ``dL/dh_{t-1}`` gets ``d_ih[t][:, :2H] @ [W_hr; W_hz]`` (the first ``2H``
    columns of the rows, :func:`~._strips.leading_strip_product`) and then
    ``d_q[t] @ W_hn`` added to the same sums (before: ``da_n``'s product is
    ``dL/d(r * h)``, and the r and z product comes last).

    With columns in ``sums`` (B, 3H or 4H), its row ``b0`` gets the block's sums of
    ``d_ih`` (and ``d_q``) over its steps and sequences (:func:`~._common.block_sums`)."""
    dy, dh_n, w_rz, whn = unowned(dy), unowned(dh_n), unowned(w_rz), unowned(whn)
    lengths, hs, gates, q_tape = unowned(lengths), unowned(hs), unowned(gates), unowned(q_tape)
    d_ih, d_q, dh0, sums = unowned(d_ih), unowned(d_q), unowned(dh0), unowned(sums)
    norms = unowned(norms)
    steps, batch, gate_cols = d_ih.shape
    hidden = dh_n.shape[1]
    rows = b1 - b0
    totals = np.zeros(sums.shape[1], d_ih.dtype)
    one = np.ones(1, d_ih.dtype)[0]
    dh = dh_n[b0:b1].copy()
    dh_rec = np.empty((rows, hidden), d_ih.dtype)
    dh_direct = np.zeros((rows, hidden), d_ih.dtype)
    dh_reset = np.zeros((rows, hidden), d_ih.dtype)
    da_n = np.zeros((rows, hidden), d_ih.dtype)
    d_rh = np.empty((rows, hidden), d_ih.dtype)
    zeros = np.zeros((batch, dy.shape[2]), d_ih.dtype)
    for s in range(steps):
        t, before, _ = step_slots(steps - 1 - s, steps, reverse, True)
        dy_t = guarded_output_grad(dh, dy, t, col0, lengths, clip, norms, zeros, b0)
        for i in range(rows):
            b = b0 + i
            if t >= lengths[b]:
                d_ih[t, b] = 0.0
                if reset_after:
                    d_q[t, b] = 0.0
                da_n[i] = 0.0
                continue
            g, di = gates[t, b], d_ih[t, b]
            dq = d_q[t, b] if reset_after else di[2 * hidden:]
            _backward_row(dh[i], dy_t[b, col0:col0 + hidden], g[:hidden], g[hidden:2 * hidden],
                          g[2 * hidden:], hs[before, b], q_tape[t, b], reset_after, one,
                          di[:hidden], di[hidden:2 * hidden], di[2 * hidden:], dq, da_n[i],
                          dh_direct[i])
        if reset_after:
            leading_strip_product(d_ih[t, b0:b1], 2 * hidden, w_rz, hidden, dh_rec, 0)
            strip_product_add(d_q[t, b0:b1], whn, hidden, dh_rec, 0)
        else:
            recurrent_product(da_n, whn, d_rh)
            for i in range(rows):
                b = b0 + i
                if t >= lengths[b]:
                    continue
                _reset_before_row(d_rh[i], gates[t, b, :hidden], hs[before, b], one,
                                  d_ih[t, b, :hidden], dh_reset[i])
            leading_strip_product(d_ih[t, b0:b1], 2 * hidden, w_rz, hidden, dh_rec, 0)
        for i in range(rows):
            b = b0 + i
            if t < lengths[b]:
                _sum_row(dh_rec[i], dh_direct[i], dh_reset[i], dh[i])
                if totals.shape[0] > 0:
                    add_to(totals[:gate_cols], d_ih[t, b])
                    if reset_after:
                        add_to(totals[gate_cols:], d_q[t, b])
    dh0[b0:b1] = dh
    if rows > 0:
        sums[b0] = totals


@par_jit
def _backward_blocks(dy, col0, dh_n, w_rz, whn, lengths, reverse, reset_after, hs, gates,
                     q_tape, d_ih, d_q, dh0, sums, clip, norms, blocks):
    batch = d_ih.shape[1]
    for part in prange(blocks):
        _backward_rows(dy, col0, dh_n, w_rz, whn, lengths, reverse, reset_after, hs, gates,
                       q_tape, d_ih, d_q, dh0, sums, clip, norms,
                       *batch_block(part, blocks, batch))


def _recurrent_weights(spec, weights):
    """``(w_rec, whn)``: all of ``W_hh`` (after), or its r,z rows and its n rows (before)."""
    weight_hh = weights["weight_hh"]
    if spec.reset_after:
        return weight_hh, weight_hh[:0]
    return _gate_blocks(spec, weight_hh)


def _gate_blocks(spec, weight_hh):
    """``W_hh``'s r and z rows and its n rows, each C-contiguous."""
    hidden = spec.hidden_size
    return (np.ascontiguousarray(weight_hh[:2 * hidden]),
            np.ascontiguousarray(weight_hh[2 * hidden:]))


def _scan_inputs(spec, weights, x, bias, blocks):
    """``(xproj, x_in_scan, w_rec_t, whn_t, nx_panel)`` for :func:`_forward_rows`: those
    of :func:`~._common.scan_input` and the panels of :func:`_joined_sums` when the
    input's product is computed in the step, else the panels of
    :func:`_recurrent_weights` (``nx_panel`` then without columns)."""
    hidden, weight_ih, weight_hh = spec.hidden_size, weights["weight_ih"], weights["weight_hh"]
    xproj, x_in_scan = scan_input(x, weight_ih, bias, blocks)
    if x_in_scan.shape[2] == 0:
        w_rec, whn = _recurrent_weights(spec, weights)
        return (xproj, x_in_scan, weight_panel(w_rec, transpose=True),
                weight_panel(whn, transpose=True), np.empty((0, 1), weight_hh.dtype))
    rz, n = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden)
    b_rz, b_in = (None, None) if bias is None else (bias[rz], bias[n])
    return (xproj, x_in_scan,
            joined_panel(b_rz, weight_ih[rz], weight_hh[rz]),
            weight_panel(weight_hh[n], transpose=True),
            joined_panel(b_in, weight_ih[n]))


def _blocks(spec, batch):
    """Blocks of sequences the scans split the batch into (:func:`~._threads.batch_blocks`)."""
    blocks = batch_blocks(batch * 3 * spec.hidden_size * spec.hidden_size, batch)
    note_scan_pool(blocks > 1)
    return blocks


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one GRU layer; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, y.dtype
    blocks = _blocks(spec, batch)
    if spec.bias:
        b_hh = weights["bias_hh"]
        bias = weights["bias_ih"].copy()
        bias[:2 * hidden] += b_hh[:2 * hidden]
        b_hn = np.ascontiguousarray(b_hh[2 * hidden:])
    else:
        bias, b_hn = None, np.zeros(hidden, dtype)
    slots = tape_length(steps, keep_tape)
    hs = state_buffer(state0[0], steps, keep_tape, reverse)
    gates = _memory.empty((slots, batch, 3 * hidden), dtype)
    q_tape = _memory.empty((slots, batch, hidden), dtype)
    args = (b_hn, lengths, reverse, keep_tape, spec.reset_after, y, col0, hs, gates, q_tape)
    with blas_threads_for(blocks > 1):
        run_scan(blocks, _forward_blocks, _forward_rows, batch,
                 *_scan_inputs(spec, weights, x, bias, blocks), *args)
    state_n = (hs[final_slot(steps, keep_tape, reverse)].copy(),)
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths, reverse=reverse, hs=hs, gates=gates, q=q_tape)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, gates, hs, reverse = tape["x"], tape["gates"], tape["hs"], tape["reverse"]
    steps, batch, _ = x.shape
    hidden, dtype = spec.hidden_size, gates.dtype
    blocks = _blocks(spec, batch)
    split = blocks > 1
    d_ih = scratch("d_ih", gates.shape, dtype)
    d_q = (scratch("d_q", (steps, batch, hidden), dtype) if spec.reset_after
           else np.empty((0, batch, hidden), dtype))
    dh0 = np.empty((batch, hidden), dtype)
    sums = np.empty((batch, (4 if spec.reset_after else 3) * hidden if spec.bias else 0), dtype)
    w_rz, whn = _gate_blocks(spec, weights["weight_hh"])
    args = (dy, col0, dstate_n[0], weight_panel(w_rz), weight_panel(whn), tape["lengths"],
            reverse, spec.reset_after, hs, gates, tape["q"], d_ih, d_q, dh0, sums,
            *error_guard(error_clip, error_norms))
    grad_ih, grad_hh = grads["weight_ih"], grads["weight_hh"]
    h_before = entering_states(hs, reverse)
    rz, n = (0, 2 * hidden), (2 * hidden, 3 * hidden)
    with blas_threads_for(split):
        run_scan(blocks, _backward_blocks, _backward_rows, batch, *args)
        accumulate_input_grads(d_ih, x, weights["weight_ih"], grad_ih, dx, split)
        # W_hh's r and z rows multiply d_ih's r and z columns, read in place
        accumulate_outer(grad_hh, d_ih, h_before, split, rows=rz)
        if spec.reset_after:
            accumulate_outer(grad_hh[2 * hidden:], d_q, h_before, split)
        else:
            accumulate_outer(grad_hh, d_ih, tape["q"], split, rows=n)
    if spec.bias:
        totals = block_sums(sums, blocks)
        grads["bias_ih"] += totals[:3 * hidden]
        if spec.reset_after:   # the recurrent r and z gradients are d_ih's: only d_q is new
            grads["bias_hh"][:2 * hidden] += totals[:2 * hidden]
            grads["bias_hh"][2 * hidden:] += totals[3 * hidden:]
        else:
            grads["bias_hh"] += totals
    return (dh0,)

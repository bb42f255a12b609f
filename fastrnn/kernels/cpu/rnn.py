"""CPU scans for the Elman RNN (tanh or ReLU).

Per step: one product, ``h_{t-1} @ W_hh^T`` added to the input's projection or,
for a dense input with a small ``W_ih``, ``[1, x_t, h_{t-1}] @ [bias; W_ih^T;
W_hh^T]`` (as in :mod:`.lstm`), and the pointwise nonlinearity of
:mod:`fastrnn.cells.rnn`; the tape is the time-aligned buffer of hidden states.
"""

import numpy as np
from numba import prange

from ...cells.rnn import RELU, TANH, rnn_backward_point, rnn_forward_point
from ._common import (accumulate_input_grads, add_to, block_sums, entering_states,
                      error_guard, final_slot, guarded_output_grad, joined_buffer,
                      recurrent_product, run_scan, scan_inputs, scratch, state_buffer,
                      step_slots, step_sums, weight_panel)
from ._gemm import batch_block
from ._jit import par_jit, point_jit, row_jit, scan_jit, unowned
from ._threads import batch_blocks, blas_threads_for, note_scan_pool

_forward_point = point_jit(rnn_forward_point)
_backward_point = point_jit(rnn_backward_point)
_NONLINEARITY_CODES = {"tanh": TANH, "relu": RELU}


# The forward's pointwise loop of a row, out of line so that LLVM vectorises it
# (as :func:`.lstm._forward_row`).
@row_jit
def _forward_row(sums, nonlinearity, one, h_next, y):
    """``h_next = y = f(sums)`` for one row, ``y`` stored in the loop.

    Inlined into the scan, the loop and a copy of the row to ``y`` after it
    took longer: forward, ms, out of line against inline, RNN (100, 64, 128,
    256) one thread 12.56 against 13.04, (2000, 16, 32, 128) two threads 14.61
    against 15.45. Same bits. (The backward's loop gained nothing out of line.)"""
    for j in range(h_next.shape[0]):
        h_j = _forward_point(sums[j], nonlinearity, one)
        h_next[j] = h_j
        y[j] = h_j


@scan_jit
def _forward_rows(xproj, x, panel, lengths, reverse, keep, nonlinearity, y, col0, hs, b0, b1):
    """Forward scan of the sequences ``b0:b1`` (each one independent of the others).

    A step's pre-activations start from its rows of the input projection
    ``xproj`` (T, B, H) and add ``h_{t-1} @ W_hh.T``, ``panel`` holding ``W_hh.T``
    (:func:`~._common.weight_panel`); or, when ``x`` (T, B, I) has features,
    they are one product of the rows ``[1, x_t, h_{t-1}]`` and ``panel``, then
    ``[bias; W_ih.T; W_hh.T]``, in the same order (see
    :func:`fastrnn.kernels.cpu.lstm._forward_rows`)."""
    xproj, x, panel, lengths = unowned(xproj), unowned(x), unowned(panel), unowned(lengths)
    y, hs = unowned(y), unowned(hs)
    steps = x.shape[0]
    hidden = hs.shape[2]
    rows = b1 - b0
    one = np.ones(1, hs.dtype)[0]
    rec = np.empty((rows, hidden), hs.dtype)
    joined = joined_buffer(rows, x, hidden, hs.dtype)
    for s in range(steps):
        t, before, after = step_slots(s, steps, reverse, keep)
        h_prev, h_next = hs[before, b0:b1], hs[after, b0:b1]
        sums = step_sums(xproj, x, t, b0, b1, h_prev, panel, joined, rec)
        for i in range(rows):
            if t >= lengths[b0 + i]:
                h_next[i] = h_prev[i]
                continue
            _forward_row(sums[i], nonlinearity, one, h_next[i], y[t, b0 + i, col0:col0 + hidden])


@par_jit
def _forward_blocks(xproj, x, panel, lengths, reverse, keep, nonlinearity, y, col0, hs, blocks):
    batch = x.shape[1]
    for part in prange(blocks):
        _forward_rows(xproj, x, panel, lengths, reverse, keep, nonlinearity, y, col0, hs,
                      *batch_block(part, blocks, batch))


@scan_jit
def _backward_rows(dy, col0, dh_n, whh, lengths, reverse, nonlinearity, hs, d_pre, dh0, sums,
                   clip, norms, b0, b1):
    """Backward scan of the sequences ``b0:b1``; with columns in ``sums`` (B, H), its
    row ``b0`` gets the block's sums of ``d_pre`` (:func:`~._common.block_sums`)."""
    dy, dh_n, whh, lengths = unowned(dy), unowned(dh_n), unowned(whh), unowned(lengths)
    hs, d_pre, dh0, sums = unowned(hs), unowned(d_pre), unowned(dh0), unowned(sums)
    norms = unowned(norms)
    steps, batch, hidden = d_pre.shape
    rows = b1 - b0
    totals = np.zeros(sums.shape[1], d_pre.dtype)
    one = np.ones(1, d_pre.dtype)[0]
    dh = dh_n[b0:b1].copy()
    dh_rec = np.empty((rows, hidden), d_pre.dtype)
    zeros = np.zeros((batch, dy.shape[2]), d_pre.dtype)
    for s in range(steps):
        t, _, after = step_slots(steps - 1 - s, steps, reverse, True)
        dy_t = guarded_output_grad(dh, dy, t, col0, lengths, clip, norms, zeros, b0)
        for i in range(rows):
            b = b0 + i
            if t >= lengths[b]:
                d_pre[t, b] = 0.0
                continue
            d_row, h_row, dh_row, dy_row = d_pre[t, b], hs[after, b], dh[i], dy_t[b, col0:]
            for j in range(hidden):
                d_row[j] = _backward_point(dh_row[j] + dy_row[j], h_row[j], nonlinearity, one)
            if totals.shape[0] > 0:
                add_to(totals, d_row)
        recurrent_product(d_pre[t, b0:b1], whh, dh_rec)
        for i in range(rows):   # steps past a sequence's end carry its dh unchanged
            if t >= lengths[b0 + i]:
                dh_rec[i] = dh[i]
        # The product is the next step's dh: swap the buffers instead of copying
        # it (backward, ms, RNN (2000, 16, 32, 128) two threads 39.85 against
        # 42.75, (100, 64, 128, 256) one thread 34.19 against 34.87; same bits).
        dh, dh_rec = dh_rec, dh
    dh0[b0:b1] = dh
    if rows > 0:
        sums[b0] = totals


@par_jit
def _backward_blocks(dy, col0, dh_n, whh, lengths, reverse, nonlinearity, hs, d_pre, dh0, sums,
                     clip, norms, blocks):
    batch = d_pre.shape[1]
    for part in prange(blocks):
        _backward_rows(dy, col0, dh_n, whh, lengths, reverse, nonlinearity, hs, d_pre, dh0,
                       sums, clip, norms, *batch_block(part, blocks, batch))


def _blocks(spec, batch):
    """Blocks of sequences the scans split the batch into (:func:`~._threads.batch_blocks`)."""
    blocks = batch_blocks(batch * spec.hidden_size * spec.hidden_size, batch)
    note_scan_pool(blocks > 1)
    return blocks


def forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0):
    """Run one direction of one RNN layer; see :func:`fastrnn.kernels.cpu.lstm.forward`.

    ``state0`` and the returned state are the 1-tuple ``(h,)``.
    """
    steps, batch, _ = x.shape
    blocks = _blocks(spec, batch)
    bias = weights["bias_ih"] + weights["bias_hh"] if spec.bias else None
    hs = state_buffer(state0[0], steps, keep_tape, reverse)
    args = (lengths, reverse, keep_tape, _NONLINEARITY_CODES[spec.nonlinearity], y, col0, hs)
    with blas_threads_for(blocks > 1):
        inputs = scan_inputs(x, weights["weight_ih"], weights["weight_hh"], bias, blocks)
        run_scan(blocks, _forward_blocks, _forward_rows, batch, *inputs, *args)
    state_n = (hs[final_slot(steps, keep_tape, reverse)].copy(),)
    if not keep_tape:
        return state_n, None
    return state_n, dict(x=x, lengths=lengths, reverse=reverse, hs=hs)


def backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None,
             error_norms=None):
    """Backward of :func:`forward`; see :func:`fastrnn.kernels.cpu.lstm.backward`."""
    x, hs, reverse = tape["x"], tape["hs"], tape["reverse"]
    steps, batch, _ = x.shape
    blocks = _blocks(spec, batch)
    d_pre = scratch("d_pre", (steps, batch, spec.hidden_size), hs.dtype)
    dh0 = np.empty((batch, spec.hidden_size), hs.dtype)
    sums = np.empty((batch, spec.hidden_size if spec.bias else 0), hs.dtype)
    args = (dy, col0, dstate_n[0], weight_panel(weights["weight_hh"]), tape["lengths"], reverse,
            _NONLINEARITY_CODES[spec.nonlinearity], hs, d_pre, dh0, sums,
            *error_guard(error_clip, error_norms))
    with blas_threads_for(blocks > 1):
        run_scan(blocks, _backward_blocks, _backward_rows, batch, *args)
        accumulate_input_grads(d_pre, x, weights["weight_ih"], grads["weight_ih"], dx, blocks > 1,
                               recurrent=(grads["weight_hh"], entering_states(hs, reverse)))
    if spec.bias:
        bias_grad = block_sums(sums, blocks)
        grads["bias_ih"] += bias_grad
        grads["bias_hh"] += bias_grad
    return (dh0,)

"""LSTM scans on numba's threads, for steps large enough to share (see :mod:`._threads`).

Each thread owns a block of hidden units ``j0:j1`` for the whole scan. Per step
it computes the pre-activations of its units for every gate (the input
projection's, plus :func:`~._strips.strip_product_add` over a panel of its own:
the rows ``gate * H + j0 : gate * H + j1`` of ``W_hh`` transposed and packed
once per scan) and runs the pointwise math, writing its columns of the
states, the gates and the output: no transpose, no second pass,
and its rows of ``W_hh`` stay in its core's cache. The backward step has two
parallel phases: the pointwise backward of each block of sequences (whole
rows of ``d_pre`` per thread), then each unit block's
columns of ``dh_{t-1} = d_pre W_hh`` (its columns of ``W_hh`` packed into a
panel once per scan: 1.5 against 2.0 ms for the d2l backward scan read in
place).

Same arithmetic per element as :mod:`.lstm`: the same pointwise functions,
the same sums in the same order. Projection
(``proj_size``) runs in :mod:`.lstm` only.
"""

import numpy as np
from numba import prange

from ...cells.lstm import lstm_backward_point, lstm_forward_point
from ._common import guarded_output_grad, join_rows, step_slots
from ._gemm import batch_block
from ._strips import (pack_columns, pack_joined_rows, strip_columns, strip_product,
                      strip_product_add)
from ._jit import inline_jit, par_jit, point_jit, row_jit, unowned

_forward_point = point_jit(lstm_forward_point)
_backward_point = point_jit(lstm_backward_point)


@row_jit
def _forward_block(pre, lengths, t, c_prev, c_next, h_prev, h_next, gates, y_t, col, peep, j0, n,
                   offsets, coupled, one, keep):
    """Pointwise forward of the units ``j0:j0 + n`` of every sequence at step ``t``.

    ``pre`` (B, gates * chunk) holds their pre-activations, gate blocks at
    ``offsets[0:4]``; their gates go to ``gates`` at ``offsets[4:8]`` when
    ``keep`` (training: the tape needs them; inference skips those stores, which
    were half the pointwise time on two threads: each thread's gate columns
    alternate with the other's every 512 bytes of a row, d2l 0.68 against 0.35 ms
    a forward without them). One call
    for all sequences: per-row calls spent a third of the time entering the
    vectorised loop (11.8 against 7.9 us for 32 x 128 units here). Every
    operand of the inner loop is a 1-D slice of its own, which is what lets
    LLVM vectorise it (with offsets into shared rows it stayed scalar, 7x
    slower).
    """
    ri, rf, rg, ro, xi, xf, xg, xo = offsets
    j1 = j0 + n
    w_i, w_f, w_o = peep[0, j0:j1], peep[1, j0:j1], peep[2, j0:j1]
    for b in range(pre.shape[0]):
        if t >= lengths[b]:
            c_next[b, j0:j1] = c_prev[b, j0:j1]
            h_next[b, j0:j1] = h_prev[b, j0:j1]
            continue
        r = pre[b]
        if keep:
            g = gates[b]
            _forward_units(r[ri:ri + n], r[rf:rf + n], r[rg:rg + n], r[ro:ro + n],
                           c_prev[b, j0:j1], w_i, w_f, w_o, coupled, one, g[xi:xi + n],
                           g[xf:xf + n], g[xg:xg + n], g[xo:xo + n], c_next[b, j0:j1],
                           h_next[b, j0:j1], y_t[b, col:col + n])
        else:
            _forward_states(r[ri:ri + n], r[rf:rf + n], r[rg:rg + n], r[ro:ro + n],
                            c_prev[b, j0:j1], w_i, w_f, w_o, coupled, one, c_next[b, j0:j1],
                            h_next[b, j0:j1], y_t[b, col:col + n])


@inline_jit
def _forward_units(a_i, a_f, a_g, a_o, c_prev, w_i, w_f, w_o, coupled, one, g_i, g_f, g_g, g_o,
                   c_next, h_next, y):
    """Pointwise forward of a block of units of one sequence (``a_*`` the
    pre-activations, ``w_*`` the peephole weights)."""
    for j in range(c_prev.shape[0]):
        i, f, g, o, c_t, m_t = _forward_point(a_i[j], a_f[j], a_g[j], a_o[j], c_prev[j], w_i[j],
                                              w_f[j], w_o[j], coupled, one)
        if not coupled:
            g_i[j] = i
        g_f[j] = f
        g_g[j] = g
        g_o[j] = o
        c_next[j] = c_t
        h_next[j] = m_t
        y[j] = m_t


@inline_jit
def _forward_states(a_i, a_f, a_g, a_o, c_prev, w_i, w_f, w_o, coupled, one, c_next, h_next, y):
    """:func:`_forward_units` without storing the gates (inference). A loop of its
    own: with the stores under a flag LLVM emits masked stores, which are slow on
    a tape inference never touches (see :func:`.lstm._forward_row`)."""
    for j in range(c_prev.shape[0]):
        _, _, _, _, c_t, m_t = _forward_point(a_i[j], a_f[j], a_g[j], a_o[j], c_prev[j], w_i[j],
                                              w_f[j], w_o[j], coupled, one)
        c_next[j] = c_t
        h_next[j] = m_t
        y[j] = m_t


@row_jit
def _gather_block(table, rows, hidden, j0, n, chunk, n_gates, pre):
    """``pre[b, gate * chunk + u] = table[rows[b], gate * H + j0 + u]`` for ``u < n``: the
    input pre-activations of a block's units, where its sums start."""
    for b in range(pre.shape[0]):
        source, target = table[rows[b]], pre[b]
        for gate in range(n_gates):
            target[gate * chunk:gate * chunk + n] = source[gate * hidden + j0:
                                                           gate * hidden + j0 + n]


@row_jit
def _backward_block(dh, dy_t, col, dc_next, gates_t, c_before, c_after, peep, lengths, t, j0, n,
                    offsets, coupled, one, d_t, dc_prev):
    """Pointwise backward of the units ``j0:j0 + n`` of every sequence at step ``t``;
    gate blocks of ``gates_t`` and ``d_t`` at ``offsets``. One call for all
    sequences, every operand a 1-D slice, as in :func:`_forward_block`."""
    xi, xf, xg, xo = offsets
    j1 = j0 + n
    w_i, w_f, w_o = peep[0, j0:j1], peep[1, j0:j1], peep[2, j0:j1]
    for b in range(dh.shape[0]):
        d = d_t[b]
        if t >= lengths[b]:
            d[xf:xf + n] = 0.0
            d[xg:xg + n] = 0.0
            d[xo:xo + n] = 0.0
            if not coupled:
                d[xi:xi + n] = 0.0
            dc_prev[b, j0:j1] = dc_next[b, j0:j1]
            continue
        g = gates_t[b]
        _backward_units(dh[b, j0:j1], dy_t[b, col:col + n], dc_next[b, j0:j1], g[xi:xi + n],
                        g[xf:xf + n], g[xg:xg + n], g[xo:xo + n], c_before[b, j0:j1],
                        c_after[b, j0:j1], w_i, w_f, w_o, coupled, one, d[xi:xi + n],
                        d[xf:xf + n], d[xg:xg + n], d[xo:xo + n], dc_prev[b, j0:j1])


@inline_jit
def _backward_units(dh, dy, dc_next, g_i, g_f, g_g, g_o, c_before, c_after, w_i, w_f, w_o,
                    coupled, one, d_i, d_f, d_g, d_o, dc_prev):
    """Pointwise backward of a block of units of one sequence."""
    for j in range(dh.shape[0]):
        f = g_f[j]
        i = one - f if coupled else g_i[j]
        da_i, da_f, da_g, da_o, dc_p = _backward_point(
            dh[j] + dy[j], dc_next[j], i, f, g_g[j], g_o[j], c_after[j], c_before[j], w_i[j],
            w_f[j], w_o[j], coupled, one)
        if not coupled:
            d_i[j] = da_i
        d_f[j] = da_f
        d_g[j] = da_g
        d_o[j] = da_o
        dc_prev[j] = dc_p


@par_jit
def forward_scan(xtable, xindex, x, w_bias, w_in, w_rec, peep, lengths, reverse, keep, coupled, y,
                 col0, hs, cs, gates, chunk):
    """Forward scan of one direction; arguments as :func:`.lstm._forward_rows`
    (no projection) plus ``chunk``, the hidden units of each thread's block, with
    the weights in three parts ``w_bias``, ``w_in``, ``w_rec`` (G, Ki), their
    columns joined (:func:`~._strips.pack_joined_rows`) in each block's panel.

    Each step's sums of a block's pre-activations run in registers, in one of
    two orders:

    - ``x`` (T, B, I) without features: they start at the row
      ``xtable[xindex[t, b]]`` (the rows of an input projection computed before
      the scan, ``xindex`` counting them, or, for token input, ``W_ih^T + bias``
      (V, G) indexed by the tokens) and add ``h_{t-1} @ W_hh^T``, ``w_rec``
      being ``W_hh`` (G, H) and the other two parts without columns;
    - ``x`` with features (a dense input whose product is computed in the step):
      they are one product of the rows ``[1, x_t, h_{t-1}]`` (:func:`~._common.
      join_rows`) and the block's panel of the parts ``bias`` (G, 1), ``W_ih``
      and ``W_hh`` (:func:`~._strips.joined_parts`): bias first (``0 + 1 * bias`` is exact), the
      input's terms, the state's. No (T, B, G) projection is written and read
      back, and no bias copied into the sums; ``xtable`` is then not read.

    Both are the order of :func:`.lstm._forward_rows`. One-hot input equals
    token ids bit for bit (its input terms add exact zeros and one weight to the
    bias, as the table does).
    """
    xtable, xindex, x, w_bias = unowned(xtable), unowned(xindex), unowned(x), unowned(w_bias)
    w_in, w_rec, peep, lengths = unowned(w_in), unowned(w_rec), unowned(peep), unowned(lengths)
    y, hs, cs, gates = unowned(y), unowned(hs), unowned(cs), unowned(gates)
    steps, batch = xindex.shape
    hidden = cs.shape[2]
    gate_rows = w_rec.shape[0]
    depth = w_bias.shape[1] + w_in.shape[1] + w_rec.shape[1]
    dtype = w_rec.dtype
    n_gates = gate_rows // hidden
    first = 0 if coupled else 1  # gate index of f in the rows of W
    n_chunks = (hidden + chunk - 1) // chunk
    one = np.ones(1, dtype)[0]
    joined = x.shape[2] > 0
    pre = np.zeros((n_chunks, batch, n_gates * chunk), dtype)
    width = strip_columns(w_rec.itemsize)
    strips = (n_gates * chunk + width - 1) // width
    panels = np.empty((n_chunks, strips * depth, width), dtype)
    rows = np.ones((n_chunks, batch if joined else 0, depth), dtype)  # [1, x_t, h]
    for block in prange(n_chunks):
        pack_joined_rows(w_bias, w_in, w_rec, hidden, block * chunk, chunk, n_gates,
                         panels[block])
    for s in range(steps):
        t, before, after = step_slots(s, steps, reverse, keep)
        k = t if keep else 0
        h_prev, c_prev, h_next, c_next = hs[before], cs[before], hs[after], cs[after]
        for block in prange(n_chunks):
            j0 = block * chunk
            n = min(hidden, j0 + chunk) - j0
            block_pre = pre[block]
            if joined:
                join_rows(x[t], h_prev, rows[block])
                strip_product(rows[block], panels[block], n_gates * chunk, block_pre, 0)
            else:
                _gather_block(xtable, xindex[t], hidden, j0, n, chunk, n_gates, block_pre)
                strip_product_add(h_prev, panels[block], n_gates * chunk, block_pre, 0)
            # (offset in block_pre, offset in gates) of gates i, f, g, o
            offsets = (0, first * chunk, (first + 1) * chunk, (first + 2) * chunk, j0,
                       first * hidden + j0, (first + 1) * hidden + j0, (first + 2) * hidden + j0)
            _forward_block(block_pre, lengths, t, c_prev, c_next, h_prev, h_next, gates[k], y[t],
                           col0 + j0, peep, j0, n, offsets, coupled, one, keep)


@par_jit
def backward_scan(dy, col0, dh_n, dc_n, whh, lengths, reverse, coupled, peep, cs, gates, d_pre,
                  dh0, dc0, chunk, clip, norms):
    """Backward scan of one direction; arguments as :func:`.lstm._backward_scan`
    (no projection) plus ``chunk``; ``whh`` is ``W_hh`` itself, (G, H): each
    thread first transposes its block of columns into a buffer of its own,
    which then stays in its core's cache. ``clip`` and ``norms`` are the error
    guard (:func:`~._common.guarded_output_grad`)."""
    dy, dh_n, dc_n, whh = unowned(dy), unowned(dh_n), unowned(dc_n), unowned(whh)
    lengths, peep, cs, gates = unowned(lengths), unowned(peep), unowned(cs), unowned(gates)
    d_pre, dh0, dc0, norms = unowned(d_pre), unowned(dh0), unowned(dc0), unowned(norms)
    steps, batch, width = d_pre.shape
    hidden = dc_n.shape[1]
    first = 0 if coupled else 1
    n_chunks = (hidden + chunk - 1) // chunk
    strip = strip_columns(d_pre.itemsize)
    panels = np.empty((n_chunks, (chunk + strip - 1) // strip * width, strip), d_pre.dtype)
    for block in prange(n_chunks):
        j0 = block * chunk
        pack_columns(whh, j0, min(hidden, j0 + chunk) - j0, panels[block])
    one = np.ones(1, d_pre.dtype)[0]
    dh = dh_n.copy()
    dh_rec = np.empty_like(dh)
    shortest = lengths.min()
    dc_next = dc_n.copy()
    dc_prev = np.empty_like(dc_next)
    zeros = np.zeros((batch, dy.shape[2]), d_pre.dtype)
    all_units = (0, first * hidden, (first + 1) * hidden, (first + 2) * hidden)
    for s in range(steps):
        t, before, after = step_slots(steps - 1 - s, steps, reverse, True)
        dy_t = guarded_output_grad(dh, dy, t, col0, lengths, clip, norms, zeros, 0)
        for part in prange(n_chunks):
            # by blocks of sequences: each thread writes whole rows of d_pre (by blocks of
            # units the threads' columns alternated every 512 bytes of a row: 3.47-3.73
            # against 3.31-3.57 ms for the d2l backward scan)
            r0, r1 = batch_block(part, n_chunks, batch)
            _backward_block(dh[r0:r1], dy_t[r0:r1], col0, dc_next[r0:r1], gates[t, r0:r1],
                            cs[before, r0:r1], cs[after, r0:r1], peep, lengths[r0:r1], t, 0,
                            hidden, all_units, coupled, one, d_pre[t, r0:r1], dc_prev[r0:r1])
        for block in prange(n_chunks):
            j0 = block * chunk
            j1 = min(hidden, j0 + chunk)
            strip_product(d_pre[t], panels[block], j1 - j0, dh_rec, j0)
            if t >= shortest:  # finished sequences keep the gradient they carry
                for b in range(batch):
                    if t < lengths[b]:
                        dh[b, j0:j1] = dh_rec[b, j0:j1]
        if t < shortest:
            dh, dh_rec = dh_rec, dh
        dc_next, dc_prev = dc_prev, dc_next
    dh0[:] = dh
    dc0[:] = dc_next

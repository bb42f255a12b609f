"""The register-tiled panel product of the CPU scans (``kernels/cpu/_simd.py``)."""

import numpy as np
import pytest

from fastrnn.kernels.cpu import _common
from fastrnn.kernels.cpu._common import accumulate_outer, accumulate_product
from fastrnn.kernels.cpu._gemm import split_outer_product_add, split_panel_product_add
from fastrnn.kernels.cpu._simd import (K_BLOCK, OUTER_PASS, OUTER_ROW_BYTES, VECTOR_BYTES, _panel,
                                       outer_product_add, panel_product, panel_product_add)

DTYPES = [np.float32, np.float64]


def _lanes(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def _operands(rng, rows, depth, cols, dtype, w0=0, extra=0):
    a = rng.standard_normal((rows, depth)).astype(dtype)
    w = rng.standard_normal((depth, w0 + cols + extra)).astype(dtype)
    return a, w


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 7, 8, 9, 15, 16, 33])
def test_matches_the_float64_product_for_every_tile_and_remainder(rows, dtype):
    rng = np.random.default_rng(rows)
    lanes = _lanes(dtype)
    # column counts around every tile boundary: double vectors, one vector, single columns
    for cols in sorted({1, lanes - 1, lanes, lanes + 1, 2 * lanes, 2 * lanes + 3,
                        3 * lanes + 1, 5 * lanes + lanes // 2}):
        for depth in (1, 5, 64, K_BLOCK + 37):   # the last one runs in two passes
            a, w = _operands(rng, rows, depth, cols, dtype, w0=3, extra=2)
            out = np.full((rows, cols + 7), 99.0, dtype)
            panel_product(a, w, 3, cols, out, 4)
            expected = a.astype(np.float64) @ w[:, 3:3 + cols].astype(np.float64)
            tol = 1e-5 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(out[:, 4:4 + cols], expected, rtol=tol,
                                       atol=tol * np.sqrt(depth))
            # nothing outside the target columns is written
            assert (out[:, :4] == 99.0).all() and (out[:, 4 + cols:] == 99.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_element_is_computed_the_same_way_in_any_tile(dtype):
    """An element's value depends only on its row of ``a`` and column of ``w``: the same
    bits whether it falls in an 8-row tile, a remainder tile or the single-column tail."""
    rng = np.random.default_rng(7)
    lanes = _lanes(dtype)
    rows, depth, cols = 19, K_BLOCK + 100, 2 * lanes + lanes + 5
    a, w = _operands(rng, rows, depth, cols, dtype)
    whole = np.empty((rows, cols), dtype)
    panel_product(a, w, 0, cols, whole, 0)
    for r in (0, 7, 8, 16, 18):
        for c in (0, lanes - 1, 2 * lanes, 3 * lanes, cols - 1):
            single = np.empty((1, 1), dtype)
            panel_product(np.ascontiguousarray(a[r:r + 1]), w, c, 1, single, 0)
            assert single[0, 0] == whole[r, c]


def test_zero_depth_gives_zeros():
    a = np.empty((5, 0), np.float32)
    w = np.empty((0, 40), np.float32)
    out = np.full((5, 40), 3.0, np.float32)
    panel_product(a, w, 0, 40, out, 0)
    assert (out == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_values_stay_in_their_row_and_column(dtype):
    rng = np.random.default_rng(3)
    rows, depth, cols = 10, 12, 3 * _lanes(dtype) + 2
    a, w = _operands(rng, rows, depth, cols, dtype)
    a[4, 2] = np.nan
    w[5, 7] = np.inf
    out = np.empty((rows, cols), dtype)
    panel_product(a, w, 0, cols, out, 0)
    bad = ~np.isfinite(out)
    assert bad[4].all()                    # a NaN in row 4 of a reaches all of row 4
    assert bad[:, 7].all()                 # inf in column 7 of w reaches all of column 7
    bad[4] = False
    bad[:, 7] = False
    assert not bad.any()


def test_rejects_arrays_that_are_not_c_contiguous():
    from numba.core.errors import TypingError
    a = np.ones((8, 6), np.float32)[:, ::2]
    w = np.ones((3, 32), np.float32)
    with pytest.raises(TypingError):
        panel_product(a, w, 0, 32, np.empty((8, 32), np.float32), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_adding_form_adds_to_what_is_there(dtype):
    """The form each pass after the first of a long sum uses (``accumulate``)."""
    rng = np.random.default_rng(11)
    lanes = _lanes(dtype)
    rows, depth, cols = 11, K_BLOCK + 9, 2 * lanes + 3
    a, w = _operands(rng, rows, depth, cols, dtype)
    start = rng.standard_normal((rows, cols)).astype(dtype)
    out = start.copy()
    _panel(a, w, 0, cols, out, 0, True)
    expected = start.astype(np.float64) + a.astype(np.float64) @ w.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_panel_product_add_starts_the_sums_from_the_output(dtype):
    """Each sum starts from the output element and adds its terms in order: adding
    ``a1 @ w1`` then ``a2 @ w2`` gives the bits of one product over ``[a1 | a2]``
    (how the LSTM forward adds a step's input and recurrent terms)."""
    rng = np.random.default_rng(12)
    lanes = _lanes(dtype)
    rows, cols = 10, 2 * lanes + 1
    a1, w1 = _operands(rng, rows, 28, cols, dtype)
    a2, w2 = _operands(rng, rows, 64, cols, dtype)
    out = np.zeros((rows, cols), dtype)
    panel_product_add(a1, w1, 0, cols, out, 0)
    panel_product_add(a2, w2, 0, cols, out, 0)
    whole = np.empty((rows, cols), dtype)
    panel_product(np.hstack([a1, a2]), np.vstack([w1, w2]), 0, cols, whole, 0)
    np.testing.assert_array_equal(out, whole)


def _outer_operands(rng, depth, rows, cols, dtype):
    d = rng.standard_normal((depth, rows)).astype(dtype)
    inputs = rng.standard_normal((depth, cols)).astype(dtype)
    grad = rng.standard_normal((rows, cols)).astype(dtype)
    expected = grad.astype(np.float64) + d.T.astype(np.float64) @ inputs.astype(np.float64)
    return d, inputs, grad, expected


def _no_more(d, grad):
    """The (more_grad, more_inputs) of no second gradient: no columns."""
    return np.empty((grad.shape[0], 0), grad.dtype), np.empty((d.shape[0], 0), d.dtype)


def _outer(d, inputs, grad, g0, g1):
    """:func:`outer_product_add` of one gradient."""
    more_grad, more_inputs = _no_more(d, grad)
    outer_product_add(d, inputs, grad, more_inputs, more_grad, g0, g1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 7, 8, 9, 17, 24])
def test_outer_product_add_matches_the_float64_product(rows, dtype):
    """``grad += d^T @ inputs`` for row counts around the 8-row tile, one and two
    vectors of columns, and sums of one, two and three passes."""
    rng = np.random.default_rng(rows)
    lanes = _lanes(dtype)
    for cols in (lanes, 2 * lanes, 3 * lanes, 5 * lanes):
        for depth in (1, 33, OUTER_PASS, 2 * OUTER_PASS + 5):
            d, inputs, grad, expected = _outer_operands(rng, depth, rows, cols, dtype)
            _outer(d, inputs, grad, 0, rows)
            tol = 1e-5 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol * np.sqrt(depth))


@pytest.mark.parametrize("dtype", DTYPES)
def test_outer_product_add_updates_only_its_rows(dtype):
    rng = np.random.default_rng(3)
    d, inputs, grad, expected = _outer_operands(rng, 40, 24, 2 * _lanes(dtype), dtype)
    start = grad.copy()
    _outer(d, inputs, grad, 8, 16)
    np.testing.assert_array_equal(grad[:8], start[:8])
    np.testing.assert_array_equal(grad[16:], start[16:])
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(grad[8:16], expected[8:16], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_outer_product_add_gives_the_same_bits_whichever_rows_a_call_takes(dtype):
    """The threads' split of the rows (:func:`split_outer_product_add`) changes no bit."""
    rng = np.random.default_rng(4)
    rows = 8 * 5 + 3
    d, inputs, grad, _ = _outer_operands(rng, OUTER_PASS + 70, rows, 3 * _lanes(dtype), dtype)
    whole, split, pieces = grad.copy(), grad.copy(), grad.copy()
    _outer(d, inputs, whole, 0, rows)
    split_outer_product_add(split, d, inputs, *_no_more(d, grad), 0, rows)
    for g0, g1 in ((0, 16), (16, 40), (40, rows)):
        _outer(d, inputs, pieces, g0, g1)
    np.testing.assert_array_equal(split, whole)
    np.testing.assert_array_equal(pieces, whole)
    # bounds that are not multiples of 8 (the GRU's 2H rows of an odd H), on the threads
    # too, in any number of blocks (one per thread: outer_parts)
    odd = grad.copy()
    for g0, g1 in ((0, 10), (10, 27), (27, rows)):
        _outer(d, inputs, odd, g0, g1)
    np.testing.assert_array_equal(odd, whole)
    for parts in (1, 2, 3):
        odd_split = grad.copy()
        for g0, g1 in ((0, 10), (10, 27), (27, rows)):
            split_outer_product_add(odd_split, d, inputs, *_no_more(d, grad), g0, g1, parts)
        np.testing.assert_array_equal(odd_split, whole)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", [True, False], ids=["threads", "blas"])
def test_accumulate_outer_of_some_rows_reads_their_columns_in_place(split, dtype):
    """``rows=(g0, g1)``: the gradients' rows ``g0:g1`` from ``d_pre``'s columns ``g0:g1``
    (W_hh's r and z rows of the GRU from the input side's gradient), a second
    gradient in the same sweep, and no other row touched."""
    rng = np.random.default_rng(8)
    d_pre = rng.standard_normal((5, 6, 39)).astype(dtype)
    x = rng.standard_normal((5, 6, 28)).astype(dtype)
    h = rng.standard_normal((5, 6, 2 * _lanes(dtype))).astype(dtype)
    grad_ih = rng.standard_normal((39, 28)).astype(dtype)
    grad_hh = rng.standard_normal((39, h.shape[2])).astype(dtype)
    start_ih, start_hh = grad_ih.copy(), grad_hh.copy()
    accumulate_outer(grad_ih, d_pre, x, split, (grad_hh, h), rows=(0, 26))
    accumulate_outer(grad_ih, d_pre, x, split, rows=(26, 39))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    want_ih = start_ih.astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, x)
    want_hh = start_hh.astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, h)
    np.testing.assert_allclose(grad_ih, want_ih, rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_hh[:26], want_hh[:26], rtol=tol, atol=tol)
    np.testing.assert_array_equal(grad_hh[26:], start_hh[26:])
    if split:   # the same bits as the whole gradient in one call
        whole = start_ih.copy()
        accumulate_outer(whole, d_pre, x, True)
        np.testing.assert_array_equal(grad_ih, whole)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_second_gradient_in_the_same_sweep_changes_no_bit(dtype):
    """``W_hh``'s gradient summed in ``W_ih``'s sweep over ``d`` (columns past
    :data:`OUTER_ROW_BYTES`, rows split as the threads split them) gets the bits of
    its own sweep, and so does the first."""
    rng = np.random.default_rng(6)
    lanes = _lanes(dtype)
    rows, depth = 8 * 3 + 5, OUTER_PASS + 37
    d, inputs, grad, _ = _outer_operands(rng, depth, rows, 3 * lanes, dtype)
    more_inputs = rng.standard_normal((depth, OUTER_ROW_BYTES // np.dtype(dtype).itemsize
                                         + 2 * lanes)).astype(dtype)
    more_grad = rng.standard_normal((rows, more_inputs.shape[1])).astype(dtype)
    alone, more_alone = grad.copy(), more_grad.copy()
    _outer(d, inputs, alone, 0, rows)
    _outer(d, more_inputs, more_alone, 0, rows)
    for g0, g1 in ((0, 8), (8, rows)):
        outer_product_add(d, inputs, grad, more_inputs, more_grad, g0, g1)
    np.testing.assert_array_equal(grad, alone)
    np.testing.assert_array_equal(more_grad, more_alone)
    split = rng.standard_normal(grad.shape).astype(dtype)
    more_split = rng.standard_normal(more_grad.shape).astype(dtype)
    start, more_start = split.copy(), more_split.copy()
    split_outer_product_add(split, d, inputs, more_split, more_inputs, 0, rows)
    _outer(d, inputs, start, 0, rows)
    _outer(d, more_inputs, more_start, 0, rows)
    np.testing.assert_array_equal(split, start)
    np.testing.assert_array_equal(more_split, more_start)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shared", [True, False], ids=["one-sweep", "two-sweeps"])
def test_accumulate_outer_adds_the_second_gradient(monkeypatch, shared, dtype):
    """``more``: both gradients match the float64 products, with the sweep shared
    or not (:data:`~fastrnn.kernels.cpu._simd.FUSED_OUTER_BYTES`), on BLAS and on
    the threads, with columns that are not whole vectors; the same bits either way."""
    monkeypatch.setattr(_common, "FUSED_OUTER_BYTES", 1 << 30 if shared else 0)
    rng = np.random.default_rng(7)
    d_pre = rng.standard_normal((6, 4, 24)).astype(dtype)
    x = rng.standard_normal((6, 4, 28)).astype(dtype)
    h = rng.standard_normal((6, 4, 2 * _lanes(dtype))).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for split in (True, False):
        grad_ih = rng.standard_normal((24, 28)).astype(dtype)
        grad_hh = rng.standard_normal((24, h.shape[2])).astype(dtype)
        want_ih = grad_ih.astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, x)
        want_hh = grad_hh.astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, h)
        start = grad_ih.copy(), grad_hh.copy()
        accumulate_outer(grad_ih, d_pre, x, split, (grad_hh, h))
        np.testing.assert_allclose(grad_ih, want_ih, rtol=tol, atol=tol)
        np.testing.assert_allclose(grad_hh, want_hh, rtol=tol, atol=tol)
        if split:
            accumulate_outer(start[0], d_pre, x, True)
            accumulate_outer(start[1], d_pre, h, True)
            np.testing.assert_array_equal(grad_ih, start[0])
            np.testing.assert_array_equal(grad_hh, start[1])


def test_outer_product_add_error_is_that_of_blas_over_a_long_sum():
    """Each pass's partial sum is added to the gradient: over 20000 terms in float32
    the error stays at BLAS's level (one running sum had 10x BLAS's error)."""
    rng = np.random.default_rng(5)
    d, inputs, grad, expected = _outer_operands(rng, 20000, 16, 32, np.float32)
    blas = grad + d.T @ inputs
    _outer(d, inputs, grad, 0, 16)
    scale = np.abs(expected).max()
    ours = np.abs(grad - expected).max() / scale
    theirs = np.abs(blas - expected).max() / scale
    assert ours <= 2 * theirs, (ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 5, 28, 33])
def test_accumulate_outer_pads_columns_that_are_not_whole_vectors(cols, dtype):
    """Gradients whose rows are not whole vectors (``W_ih`` of a 28-feature input) go
    through zero-padded copies; a non-contiguous gradient too."""
    rng = np.random.default_rng(cols)
    d_pre = rng.standard_normal((6, 4, 24)).astype(dtype)
    inputs = rng.standard_normal((6, 4, cols)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for split in (True, False):
        grad = rng.standard_normal((24, cols)).astype(dtype)
        expected = grad.astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, inputs)
        accumulate_outer(grad, d_pre, inputs, split)
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)
    # a gradient whose rows are whole vectors but not contiguous
    inputs = rng.standard_normal((6, 4, 2 * _lanes(dtype))).astype(dtype)
    holder = rng.standard_normal((24, 4 * _lanes(dtype))).astype(dtype)
    expected = holder[:, ::2].astype(np.float64) + np.einsum("tbg,tbc->gc", d_pre, inputs)
    accumulate_outer(holder[:, ::2], d_pre, inputs, True)
    np.testing.assert_allclose(holder[:, ::2], expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 5, 16, 28, 32])
def test_accumulate_product_of_a_narrow_matrix_matches_the_float64_product(cols, dtype):
    """``dx += d_pre @ W_ih`` for a narrow input, on the threads (panel product, padded
    when the columns are not whole vectors) and not (BLAS)."""
    rng = np.random.default_rng(cols)
    d_pre = rng.standard_normal((5, 7, 600)).astype(dtype)   # two passes of the sums
    weight = rng.standard_normal((600, cols)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for split in (True, False):
        dx = rng.standard_normal((5, 7, cols)).astype(dtype)
        expected = dx.astype(np.float64) + d_pre.astype(np.float64) @ weight
        accumulate_product(dx, d_pre, weight, split)
        np.testing.assert_allclose(dx, expected, rtol=tol, atol=tol * 25)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_panel_product_add_gives_the_bits_of_one_call(dtype):
    rng = np.random.default_rng(9)
    a, w = _operands(rng, 37, K_BLOCK + 20, 2 * _lanes(dtype), dtype)
    start = rng.standard_normal((37, 2 * _lanes(dtype))).astype(dtype)
    split, whole = start.copy(), start.copy()
    split_panel_product_add(split, a, w)
    panel_product_add(a, w, 0, w.shape[1], whole, 0)
    np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose_into_moves_every_element_of_a_block(dtype):
    """Whole register tiles, the right and bottom strips, and both corners, at offsets
    into larger arrays (nothing outside the block is written)."""
    from fastrnn.kernels.cpu._transpose import transpose_into
    rng = np.random.default_rng(5)
    lanes = _lanes(dtype)
    for rows, cols in [(lanes, lanes), (3 * lanes, 2 * lanes), (2 * lanes + 3, lanes + 5),
                       (lanes - 1, 3 * lanes), (5, 3), (1, 1), (0, 4), (4, 0)]:
        source = rng.standard_normal((rows + 3, cols + 5)).astype(dtype)
        target = np.full((cols + 2, rows + 9), 7.0, dtype)
        transpose_into(source, 1 * (cols + 5) + 2, cols + 5, rows, cols, target,
                       1 * (rows + 9) + 4, rows + 9)
        expected = np.full_like(target, 7.0)
        expected[1:1 + cols, 4:4 + rows] = source[1:1 + rows, 2:2 + cols].T
        np.testing.assert_array_equal(target, expected)


def _unpacked(strips, depth, cols):
    """The dense (K, cols) panel held in ``strips``, and its padding columns."""
    width = strips.shape[1]
    dense = strips.reshape(-1, depth, width).transpose(1, 0, 2).reshape(depth, -1)
    return dense[:, :cols], dense[:, cols:]


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_panels_hold_the_matrix_in_strips(dtype):
    from fastrnn.kernels.cpu._common import weight_panel
    rng = np.random.default_rng(2)
    width = 2 * _lanes(dtype)
    for rows, cols in [(96, 512), (7, 2 * width), (33, width + 5), (5, 3), (1, 1)]:
        w = rng.standard_normal((rows, cols)).astype(dtype)
        for matrix, transpose in ((w, False), (w.T.copy(), True)):
            strips = weight_panel(matrix, transpose=transpose)
            assert strips.shape == (-(-cols // width) * rows, width)
            dense, padding = _unpacked(strips, rows, cols)
            np.testing.assert_array_equal(dense, w)
            assert (padding == 0).all()


def test_weight_panels_of_views_and_empty_matrices():
    from fastrnn.kernels.cpu._common import weight_panel
    rng = np.random.default_rng(6)
    w = rng.standard_normal((64, 40)).astype(np.float32)
    view = w[::2, 3:]                                          # not contiguous
    np.testing.assert_array_equal(_unpacked(weight_panel(view, transpose=True), 37, 32)[0],
                                  view.T)
    empty = weight_panel(w[:0], transpose=True)                # GRU's reset-after whn
    assert empty.shape == (0, 2 * _lanes(np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pack_rows_gathers_a_unit_block_of_every_gate(dtype):
    """The threaded LSTM's per-block panels: gate blocks of ``chunk`` columns that
    straddle strips, and a last block with fewer units than ``chunk`` (zeros)."""
    from fastrnn.kernels.cpu._strips import pack_rows
    rng = np.random.default_rng(7)
    width = 2 * _lanes(dtype)
    hidden, depth, chunk = 52, 20, 28
    w = rng.standard_normal((4 * hidden, depth)).astype(dtype)
    for j0 in (0, 28):
        cols = 4 * chunk
        strips = np.full((-(-cols // width) * depth, width), np.nan, dtype)
        pack_rows(w, hidden, j0, chunk, 4, strips)
        units = min(hidden, j0 + chunk) - j0
        expected = np.zeros((depth, cols), dtype)
        for gate in range(4):
            rows = w[gate * hidden + j0:gate * hidden + j0 + units]
            expected[:, gate * chunk:gate * chunk + units] = rows.T
        dense, padding = _unpacked(strips, depth, cols)
        np.testing.assert_array_equal(dense, expected)
        assert (padding == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_joined_panels_equal_the_panels_of_the_joined_weights(dtype):
    """``pack_joined_rows`` reads ``[bias, W_ih, W_hh]`` in three parts: its panels (a
    whole one, and the threaded LSTM's unit blocks) equal those of the concatenation,
    bit for bit, with and without a bias, with one weight or two."""
    from fastrnn.kernels.cpu._strips import (joined_panel, joined_parts, pack_joined_rows,
                                             pack_rows, packed_panel)
    rng = np.random.default_rng(8)
    width = 2 * _lanes(dtype)
    hidden, inputs = 52, 7
    b = rng.standard_normal(4 * hidden).astype(dtype)
    w_in = rng.standard_normal((4 * hidden, inputs)).astype(dtype)
    w_rec = rng.standard_normal((4 * hidden, hidden)).astype(dtype)
    for bias, weights in ((b, (w_in, w_rec)), (None, (w_in, w_rec)), (b, (w_in,))):
        column = np.zeros((4 * hidden, 1), dtype) if bias is None else bias[:, None]
        joined = np.concatenate([column, *weights], axis=1)
        np.testing.assert_array_equal(joined_panel(bias, *weights),
                                      packed_panel(joined, transpose=True))
        depth, chunk = joined.shape[1], 28
        for j0 in (0, 28):
            strips = np.full((-(-4 * chunk // width) * depth, width), np.nan, dtype)
            expected = strips.copy()
            pack_joined_rows(*joined_parts(bias, *weights), hidden, j0, chunk, 4, strips)
            pack_rows(joined, hidden, j0, chunk, 4, expected)
            np.testing.assert_array_equal(strips, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 3, 8, 13])
def test_strip_products_equal_panel_products_bit_for_bit(rows, dtype):
    """Whole strips, a last strip of one vector and single columns, or single columns
    only, sums in passes (K > K_BLOCK) and none (K = 0), written at an offset; a
    single row also through its tiles across 4 strips (8 and 17 vectors of columns:
    one or two such tiles, then strips, a vector and single columns)."""
    from fastrnn.kernels.cpu._strips import packed_panel, strip_product, strip_product_add
    rng = np.random.default_rng(rows)
    lanes = _lanes(dtype)
    for cols in sorted({1, lanes - 1, lanes + 3, 2 * lanes, 4 * lanes + 1, 5 * lanes + 2,
                        8 * lanes + 3, 17 * lanes + 1}):
        for depth in (0, 5, 64, K_BLOCK + 37):
            a, w = _operands(rng, rows, depth, cols, dtype)
            strips = packed_panel(w)
            start = rng.standard_normal((rows, cols + 6)).astype(dtype)
            for strip_fn, panel_fn in ((strip_product, panel_product),
                                       (strip_product_add, panel_product_add)):
                got, expected = start.copy(), start.copy()
                strip_fn(a, strips, cols, got, 4)
                panel_fn(a, w, 0, cols, expected, 4)
                np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 3, 8, 13])
def test_leading_strip_product_reads_only_the_leading_columns(rows, dtype):
    """The product of the first ``depth`` columns of a wider ``a``, read in place, equals
    the strip product of those columns copied out, bit for bit, in every remainder
    path; the columns past ``depth`` (NaN here) are never read."""
    from fastrnn.kernels.cpu._strips import leading_strip_product, packed_panel, strip_product
    rng = np.random.default_rng(rows + 50)
    lanes = _lanes(dtype)
    for cols in sorted({1, lanes + 3, 2 * lanes, 5 * lanes + 2}):
        for depth in (1, 6, K_BLOCK + 37):
            a, w = _operands(rng, rows, depth, cols, dtype)
            wide = np.hstack([a, np.full((rows, 9), np.nan, dtype)])
            strips = packed_panel(w)
            got, expected = (np.zeros((rows, cols + 6), dtype) for _ in range(2))
            leading_strip_product(wide, depth, strips, cols, got, 4)
            strip_product(a, strips, cols, expected, 4)
            np.testing.assert_array_equal(got, expected)
            assert np.isfinite(got).all()


def test_join_rows_writes_one_input_and_state_after_the_leading_one():
    from fastrnn.kernels.cpu._common import join_rows
    rng = np.random.default_rng(8)
    x_t, h = rng.standard_normal((3, 5)), rng.standard_normal((3, 7))
    joined = np.ones((3, 13))
    join_rows(x_t, h, joined)
    np.testing.assert_array_equal(joined, np.hstack([np.ones((3, 1)), x_t, h]))


@pytest.mark.parametrize("kind, hidden, dtype, options", [
    ("RNN", 256, np.float64, {}),                     # W_hh.T rows of 2 KiB: padded
    ("LSTM", 64, np.float64, {}),                     # 4H = 256 float64: padded
    ("GRU", 256, np.float32, {"reset_after": False}),  # 2H and H rows of 2 and 1 KiB
], ids=["rnn", "lstm", "gru-reset-before"])
def test_layers_with_padded_panels_match_torch(kind, hidden, dtype, options):
    """The shapes where the panels' rows are padded, forward and backward against torch."""
    from . import _torch_ref
    _torch_ref.load_torch()
    import fastrnn as fr
    layer = getattr(fr, kind)(5, hidden, dtype=dtype, seed=3, **options)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 5)).astype(dtype)
    dy = rng.standard_normal((6, 3, hidden)).astype(dtype)
    y, _, tape = layer.forward(x)
    dx, _ = layer.backward(tape, dy)
    if options:  # torch has no reset-before GRU: the float64 reference of this repository
        from . import reference
        ref_y, _ = reference.layer_forward("gru", layer.state_dict(), x.astype(np.float64),
                                           (np.zeros((1, 3, hidden)),), None, 1, False,
                                           reset_after=False)
        np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
        return
    zeros = np.zeros((1, 3, hidden), dtype)
    dh_n = (zeros, zeros) if kind == "LSTM" else zeros
    ty, _, tdx, _, tgrads = _torch_ref.torch_forward_backward(layer, x, None, None, dy, dh_n)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tdx, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["weight_hh_l0"], tgrads["weight_hh_l0"], rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("kind, options", [("GRU", {"reset_after": False}), ("GRU", {}),
                                           ("LSTM", {"peephole": True})],
                         ids=["gru-reset-before", "gru", "lstm-peephole"])
def test_backward_at_padded_shapes_matches_a_directional_difference(kind, options):
    """float64 layers whose panels are all padded (H = 256: rows of 2 or 4 KiB): the
    gradient's component along a random direction of (x, every parameter) against a
    central difference of the loss along it."""
    import fastrnn as fr
    layer = getattr(fr, kind)(4, 256, dtype=np.float64, seed=8, **options)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 2, 4))
    dy = rng.standard_normal((5, 2, 256))
    dx_dir = rng.standard_normal(x.shape)
    p_dir = rng.standard_normal(layer.flat_params.shape)
    start = layer.flat_params.copy()

    def loss(eps):
        layer.flat_params[...] = start + eps * p_dir
        return float((layer(x + eps * dx_dir)[0] * dy).sum())

    step = 1e-5
    numeric = (loss(step) - loss(-step)) / (2 * step)
    layer.flat_params[...] = start
    layer.zero_grad()
    _, _, tape = layer.forward(x)
    dx, _ = layer.backward(tape, dy)
    analytic = float((dx * dx_dir).sum() + (layer.flat_grads * p_dir).sum())
    assert abs(analytic - numeric) <= 1e-7 * max(1.0, abs(numeric))


def test_unowned_views_read_and_write_the_same_memory():
    """``_jit.unowned``: the same data, shape and strides without the reference count;
    writes through its views land in the caller's array."""
    from numba import njit

    from fastrnn.kernels.cpu._jit import unowned

    @njit
    def fill_rows(a, start):
        view = unowned(a)
        for i in range(view.shape[0]):
            row = view[i]
            for j in range(row.shape[0]):
                row[j] = start + i * 10 + j
        return view[1:, ::2].sum(), view.strides[0], view.shape[1]

    a = np.zeros((3, 5), np.float64)
    total, stride, cols = fill_rows(a, 1.0)
    np.testing.assert_array_equal(a, 1.0 + np.arange(3)[:, None] * 10 + np.arange(5))
    assert total == a[1:, ::2].sum() and stride == a.strides[0] and cols == 5
    b = np.zeros((4, 6), np.float32)[:, 1:4]    # a strided view: layout "A"
    fill_rows(b, 0.0)
    np.testing.assert_array_equal(b, np.arange(4)[:, None] * 10 + np.arange(3))

"""What a tape keeps of layer 0's input: its own copy, with the padding zeroed.

The backward reads the input again for the ``weight_ih`` gradient, a product
over every step, padding included: a NaN or infinity there (padding values
are the caller's) would turn 0 * NaN into NaN gradients, and a caller's array
changed between ``forward`` and ``backward`` (a reused batch buffer) would
change them silently.
"""

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.data import pad_sequences

CELLS = [fr.RNN, fr.GRU, fr.LSTM]


def _grads(layer):
    return {name: np.array(g) for name, g in layer.grads.items()}


def _train(layer, x, lengths=None, mutate=None):
    layer.zero_grad()
    y, _, tape = layer.forward(x, lengths=lengths)
    if mutate is not None:
        mutate()
    dy = np.ones_like(y)
    dx = layer.backward(tape, dy)[0]
    return _grads(layer), dx


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pad", [np.nan, np.inf])
def test_non_finite_padding_does_not_reach_the_gradients(cell, bidirectional, pad):
    rng = np.random.default_rng(0)
    sequences = [rng.standard_normal((n, 3)).astype(np.float32) for n in (6, 2, 4)]
    lengths = [len(s) for s in sequences]
    zero_padded, _ = pad_sequences(sequences)
    bad_padded, _ = pad_sequences(sequences, value=pad)
    layer = cell(3, 5, bidirectional=bidirectional, seed=1)
    expected, dx_expected = _train(layer, zero_padded, lengths)
    got, dx = _train(layer, bad_padded, lengths)
    for name in expected:
        assert np.isfinite(got[name]).all(), name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(dx, dx_expected)
    assert np.isnan(bad_padded[5, 1]).all() or np.isinf(bad_padded[5, 1]).all()  # untouched


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "unbatched"])
def test_changing_x_between_forward_and_backward_changes_nothing(cell, layout):
    rng = np.random.default_rng(2)
    shape = {"time_major": (7, 3, 4), "batch_first": (3, 7, 4), "unbatched": (7, 4)}[layout]
    x = rng.standard_normal(shape).astype(np.float32)
    layer = cell(4, 6, batch_first=layout == "batch_first", seed=3)
    expected, dx_expected = _train(layer, x.copy())
    got, dx = _train(layer, x, mutate=lambda: x.fill(5.0))
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(dx, dx_expected)


def test_changing_token_ids_or_lengths_before_backward_changes_nothing():
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, 9, size=(6, 3))
    lengths = np.array([6, 4, 5])
    layer = fr.LSTM(9, 5, seed=5)
    layer.zero_grad()
    y, _, tape = layer.forward(tokens.copy(), lengths=lengths.copy())
    layer.backward(tape, np.ones_like(y))
    expected = _grads(layer)

    def mutate():
        tokens[...] = 0
        lengths[...] = 1

    got, _ = _train(layer, tokens, lengths, mutate=mutate)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_the_callers_input_is_never_written():
    x, _ = pad_sequences([np.ones((4, 3), np.float32), np.ones((2, 3), np.float32)],
                         value=np.nan)
    before = x.copy()
    layer = fr.GRU(3, 4, seed=0)
    y, _, tape = layer.forward(x, lengths=[4, 2])
    layer.backward(tape, np.ones_like(y))
    np.testing.assert_array_equal(x, before)

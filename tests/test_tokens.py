"""One-hot input as token ids: a gather of ``weight_ih`` columns, never a one-hot matrix."""

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.kernels.cpu.lstm import _scan_mode

from ._compare import assert_close

CASES = [(fr.RNN, {}), (fr.RNN, dict(nonlinearity="relu")), (fr.GRU, {}),
         (fr.GRU, dict(reset_after=False)), (fr.LSTM, {}), (fr.LSTM, dict(proj_size=3)),
         (fr.LSTM, dict(num_layers=2, peephole=True))]


def _one_hot_pair(cls, options, vocab, hidden, steps, batch, dtype=np.float64, **layer):
    model = cls(vocab, hidden, dtype=dtype, seed=3, **options, **layer)
    ids = np.random.default_rng(0).integers(0, vocab, (steps, batch))
    return model, ids, np.eye(vocab, dtype=dtype)[ids]


@pytest.mark.parametrize("cls, options", CASES)
def test_token_ids_equal_one_hot_input(cls, options):
    model, ids, one_hot = _one_hot_pair(cls, options, vocab=7, hidden=6, steps=5, batch=3)
    y_ids, state_ids, tape_ids = model.forward(ids)
    y_hot, state_hot, tape_hot = model.forward(one_hot)
    assert np.array_equal(y_ids, y_hot)
    dy = np.random.default_rng(1).standard_normal(y_ids.shape)
    model.zero_grad()
    dx, _ = model.backward(tape_ids, dy)
    grads_ids = model.flat_grads.copy()
    model.zero_grad()
    model.backward(tape_hot, dy)
    assert dx is None
    assert_close(grads_ids, model.flat_grads, 1e-14, "gradients from token ids")


def test_token_ids_on_the_threaded_lstm_path():
    model, ids, one_hot = _one_hot_pair(fr.LSTM, {}, vocab=28, hidden=256, steps=4, batch=32)
    if _scan_mode(model.spec, 32, model.dtype) == "serial":
        pytest.skip("numba has a single thread or no thread-safe threading layer here")
    assert _scan_mode(model.spec, 32, model.dtype) == "units"
    y_ids, _, tape_ids = model.forward(ids)
    y_hot, _, tape_hot = model.forward(one_hot)   # narrow: its product computed in the scan
    np.testing.assert_array_equal(y_ids, y_hot)
    dy = np.random.default_rng(1).standard_normal(y_ids.shape)
    model.zero_grad()
    model.backward(tape_ids, dy)
    grads_ids = model.flat_grads.copy()
    model.zero_grad()
    model.backward(tape_hot, dy)
    assert_close(grads_ids, model.flat_grads, 1e-13, "gradients")


def test_token_ids_batch_first_and_unbatched():
    model, ids, _ = _one_hot_pair(fr.GRU, {}, vocab=5, hidden=4, steps=6, batch=2)
    y, h = model(ids)
    y_first, h_first = fr.GRU(5, 4, dtype=np.float64, seed=3, batch_first=True)(ids.T)
    assert np.array_equal(y_first.transpose(1, 0, 2), y) and np.array_equal(h_first, h)
    y_single, _ = model(ids[:, 1])
    assert_close(y_single, y[:, 1], 1e-14, "unbatched output")


@pytest.mark.parametrize("ids, message", [
    (np.array([[0, 7]]), r"x holds token ids, which must lie in \[0, input_size=7\), "
                         r"got values from 0 to 7"),
    (np.array([[-1, 2]]), r"got values from -1 to 2"),
    (np.zeros((0, 2), np.int64), r"at least one time step"),
])
def test_bad_token_ids(ids, message):
    with pytest.raises(ValueError, match=message):
        fr.LSTM(7, 4)(ids)


def test_three_dimensional_integer_input_is_refused():
    with pytest.raises(TypeError, match=r"x must have dtype float32"):
        fr.LSTM(7, 4)(np.zeros((2, 2, 7), np.int64))

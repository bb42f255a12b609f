"""Sequential: one flat buffer for all layers, same results as the layers run by hand."""

import numpy as np
import pytest

import fastrnn as fr

from ._compare import assert_close, central_difference


def _layers(dtype=np.float64):
    return [fr.Embedding(7, 3, dtype=dtype, seed=1), fr.LSTM(3, 5, dtype=dtype, seed=2),
            fr.Dropout(0.3, seed=4), fr.GRU(5, 4, dtype=dtype, seed=3),
            fr.Linear(4, 7, dtype=dtype, seed=5)]


def _tokens():
    return np.random.default_rng(0).integers(0, 7, (6, 2))


def test_sequential_equals_the_layers_run_by_hand():
    model = fr.Sequential(_layers())
    embed, lstm, drop, gru, linear = _layers()
    tokens = _tokens()
    dy = np.random.default_rng(1).standard_normal((6, 2, 7))
    y, states, tape = model.forward(tokens)
    dx, dhx = model.backward(tape, dy)

    e, t0 = embed.forward(tokens)
    h1, s1, t1 = lstm.forward(e)
    d, t2 = drop.forward(h1)
    h2, s2, t3 = gru.forward(d)
    want, t4 = linear.forward(h2)
    g = linear.backward(t4, dy)
    g, dh2 = gru.backward(t3, g)
    g = drop.backward(t2, g)
    g, dh1 = lstm.backward(t1, g)
    embed.backward(t0, g)

    np.testing.assert_array_equal(y, want)
    for got, expected in zip([states[0][0], states[0][1], states[1]], [*s1, s2]):
        np.testing.assert_array_equal(got, expected)
    assert dx is None
    np.testing.assert_array_equal(dhx[1], dh2)
    by_hand = np.concatenate([layer.flat_grads for layer in (embed, lstm, gru, linear)])
    np.testing.assert_array_equal(model.flat_grads, by_hand)


def test_layers_keep_views_into_the_model_buffers():
    model = fr.Sequential(_layers())
    lstm = model.layers[1]
    assert np.shares_memory(lstm.params["weight_hh_l0"], model.flat_params)
    assert np.shares_memory(lstm.grads["weight_hh_l0"], model.flat_grads)
    assert model.params["1.weight_hh_l0"] is not None
    np.testing.assert_array_equal(model.params["1.weight_hh_l0"], lstm.params["weight_hh_l0"])
    tokens = _tokens()
    before, _ = model(tokens)
    model.flat_params[...] *= 0.5  # the layers must compute with the new values
    after, _ = model(tokens)
    assert not np.allclose(before, after)
    model.zero_grad()
    assert not lstm.flat_grads.any()
    assert sorted(model.state_dict()) == sorted(model.params)


def test_state_carried_across_windows_equals_one_pass():
    model = fr.Sequential(_layers()[:2] + [fr.Linear(5, 7, dtype=np.float64, seed=5)])
    tokens = _tokens()
    whole, _ = model(tokens)
    first, states = model(tokens[:4])
    second, _ = model(tokens[4:], hx=states)
    assert_close(np.concatenate([first, second]), whole, 1e-14, "carried state")


def test_sequential_backward_matches_finite_differences():
    model = fr.Sequential([fr.LSTM(2, 3, dtype=np.float64, seed=0),
                           fr.Linear(3, 2, dtype=np.float64, seed=1)])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 2))
    hx = [(rng.standard_normal((1, 2, 3)), rng.standard_normal((1, 2, 3)))]
    dy = rng.standard_normal((4, 2, 2))
    _, _, tape = model.forward(x, hx)
    model.zero_grad()
    dx, dhx = model.backward(tape, dy)

    def loss():
        return float(np.sum(model(x, hx)[0] * dy))

    assert_close(dx, central_difference(loss, x), 1e-7, "dx")
    assert_close(dhx[0][1], central_difference(loss, hx[0][1]), 1e-7, "dc0")
    assert_close(model.flat_grads, central_difference(loss, model.flat_params), 1e-7, "flat grads")


def test_sequential_rejects_bad_arguments():
    with pytest.raises(ValueError, match="layers must hold at least one layer"):
        fr.Sequential([])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a RNN, LSTM, GRU, Linear"):
        fr.Sequential([fr.Linear(2, 2), "relu"])
    with pytest.raises(TypeError, match=r"layers must share one dtype, got layers\[0\] float32"):
        fr.Sequential([fr.Linear(2, 2), fr.Linear(2, 2, dtype=np.float64)])
    model = fr.Sequential([fr.LSTM(2, 3), fr.Linear(3, 2)])
    with pytest.raises(ValueError, match=r"hx must be a list with one state per recurrent layer"):
        model(np.zeros((2, 1, 2), np.float32), hx=[None, None])

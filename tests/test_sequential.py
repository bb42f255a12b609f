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


def test_backward_takes_only_its_own_tape():
    model = fr.Sequential([fr.LSTM(3, 4, seed=0), fr.Linear(4, 2, seed=1)])
    other = fr.Sequential([fr.LSTM(3, 4, seed=0), fr.Linear(4, 2, seed=1)])
    x = np.zeros((5, 2, 3), np.float32)
    y, _, tape = model.forward(x)
    dy = np.ones_like(y)
    lstm_tape = model.layers[0].forward(x)[2]
    short = type(tape)(tape[1:], owner=model)
    for bad in (None, lstm_tape, short, other.forward(x)[2]):
        with pytest.raises(TypeError, match=r"tape must be the tape returned by this "
                                            r"Sequential's forward\(\), got"):
            model.backward(bad, dy)
    model.backward(tape, dy)


def test_dense_layers_check_their_tapes_and_output_gradients():
    x = np.ones((5, 2, 4), np.float32)
    linear, other = fr.Linear(4, 3, seed=0), fr.Linear(4, 3, seed=0)
    y, tape = linear.forward(x)
    for bad in (None, other.forward(x)[1]):
        with pytest.raises(TypeError, match=r"tape must be the tape returned by this layer's "
                                            r"forward\(\)"):
            linear.backward(bad, np.ones_like(y))
    table = fr.Embedding(6, 3, seed=0)
    rows, table_tape = table.forward(np.array([[1, 2]]))
    with pytest.raises(TypeError, match=r"tape must be the tape returned by this layer's"):
        table.backward(None, np.ones_like(rows))
    drop = fr.Dropout(0.5, seed=0)
    out, drop_tape = drop.forward(x)
    with pytest.raises(ValueError, match=r"dy must have shape \(5, 2, 4\) \(the output's\), "
                                         r"got \(1, 2, 4\)"):
        drop.backward(drop_tape, np.ones((1, 2, 4), np.float32))
    with pytest.raises(TypeError, match=r"dy must have dtype float32 \(the output's\), "
                                        r"got float64"):
        drop.backward(drop_tape, np.ones((5, 2, 4)))
    with pytest.raises(TypeError, match=r"dy must be an array of float32 shaped like the "
                                        r"output, got NoneType"):
        drop.backward(drop_tape, None)
    with pytest.raises(TypeError, match=r"tape must be the tape returned by this layer's"):
        fr.Dropout(0.5).backward(drop_tape, np.ones_like(out))
    np.testing.assert_array_equal(drop.backward(drop_tape, np.ones_like(out)) > 0, out > 0)


def test_linear_bias_must_be_a_bool():
    with pytest.raises(TypeError, match=r"bias must be True or False, got str .no."):
        fr.Linear(3, 2, bias="no")

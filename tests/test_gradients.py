"""Backward against central finite differences in float64, and related invariants."""

import numpy as np
import pytest
from hypothesis import given, settings

import fastrnn as fr

from ._compare import assert_close
from ._configs import CELLS, build_layer, layer_configs, random_call

#: Step of the five-point central difference: truncation error O(EPS**4) and
#: roundoff O(1e-16 / EPS) keep it accurate to ~1e-12 even for gradients of
#: 1e-6 (a plain two-point difference bottoms out at ~1e-11 absolute there).
EPS = 1e-4


def _loss(layer, x, hx, lengths, dy, dh_n, rng_state=None):
    """``sum(y*dy) + sum(h_n*dh_n)``, replaying the dropout generator if given."""
    if rng_state is not None:
        layer._dropout_rng.bit_generator.state = rng_state
    y, h_n, _ = layer.forward(x, hx, lengths)
    total = np.sum(y * dy)
    for state, grad in zip(_parts(h_n), _parts(dh_n)):
        total += np.sum(state * grad)
    return total


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _numeric_grad(function, array):
    """Five-point central differences of ``function()`` for every entry of ``array``."""
    grad = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for index in range(flat.size):
        saved = flat[index]
        values = []
        for step in (2 * EPS, EPS, -EPS, -2 * EPS):
            flat[index] = saved + step
            values.append(function())
        flat[index] = saved
        grad_flat[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * EPS)
    return grad


def check_gradients(layer, x, hx, lengths, dy, dh_n, tol=1e-6):
    rng_state = layer._dropout_rng.bit_generator.state
    _, _, tape = layer.forward(x, hx, lengths)
    layer.zero_grad()
    dx, dhx = layer.backward(tape, dy, dh_n)

    def loss():
        return _loss(layer, x, hx, lengths, dy, dh_n, rng_state)

    assert_close(dx, _numeric_grad(loss, x), tol, "dx")
    if hx is not None:
        for index, (part, grad) in enumerate(zip(_parts(hx), _parts(dhx))):
            assert_close(grad, _numeric_grad(loss, part), tol, f"dhx[{index}]")
    numeric = _numeric_grad(loss, layer.flat_params)
    offset = 0
    for name, grad in layer.grads.items():
        assert_close(grad, numeric[offset:offset + grad.size].reshape(grad.shape), tol,
                     f"grad {name}")
        offset += grad.size


@settings(max_examples=50, deadline=None, derandomize=True)
@given(config=layer_configs(max_layers=2))
def test_backward_matches_finite_differences(config):
    layer = build_layer(config, np.float64)
    x, hx, lengths, dy, dh_n = random_call(layer, config, np.float64)
    check_gradients(layer, x, hx, lengths, dy, dh_n)


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_backward_uses_the_forward_mask(cell):
    config = dict(cell=cell, input_size=3, hidden_size=4, num_layers=3, bias=True,
                  batch_first=False, bidirectional=True, proj_size=2 if "lstm" in cell else 0,
                  steps=4, batch=2, unbatched=False, hx_given=True, seed=5, use_lengths=True)
    layer = build_layer(config, np.float64, dropout=0.4)
    x, hx, lengths, dy, dh_n = random_call(layer, config, np.float64)
    check_gradients(layer, x, hx, lengths, dy, dh_n)


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_is_reproducible_and_training_only(cell):
    config = dict(cell=cell, input_size=3, hidden_size=4, num_layers=2, bias=True,
                  batch_first=False, bidirectional=False, proj_size=0, steps=5, batch=3,
                  unbatched=False, hx_given=False, seed=9, use_lengths=False)
    first, second = build_layer(config, np.float64, 0.5), build_layer(config, np.float64, 0.5)
    plain = build_layer(config, np.float64, 0.0)
    x = np.random.default_rng(0).standard_normal((5, 3, 3))
    np.testing.assert_array_equal(first.forward(x)[0], second.forward(x)[0])
    assert not np.array_equal(first.forward(x)[0], plain.forward(x)[0])
    np.testing.assert_array_equal(first(x)[0], plain(x)[0])  # inference: no dropout


@settings(max_examples=30, deadline=None, derandomize=True)
@given(config=layer_configs())
def test_inference_equals_training_forward(config):
    for dtype in (np.float32, np.float64):
        layer = build_layer(config, dtype)
        x, hx, lengths, _, _ = random_call(layer, config, dtype)
        y, h_n = layer(x, hx, lengths)
        y_t, h_n_t, _ = layer.forward(x, hx, lengths)
        np.testing.assert_array_equal(y, y_t)
        for a, b in zip(_parts(h_n), _parts(h_n_t)):
            np.testing.assert_array_equal(a, b)


def test_backward_accumulates_until_zero_grad():
    layer = fr.GRU(3, 4, num_layers=2, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    y, _, tape = layer.forward(x)
    dy = np.ones_like(y)
    layer.backward(tape, dy)
    once = layer.flat_grads.copy()
    layer.backward(tape, dy)
    np.testing.assert_allclose(layer.flat_grads, 2 * once, rtol=1e-14)
    layer.zero_grad()
    assert not layer.flat_grads.any()


@pytest.mark.parametrize("cell_class, layer_class, options", [
    (fr.RNNCell, fr.RNN, {"nonlinearity": "relu"}),
    (fr.RNNCell, fr.RNN, {}),
    (fr.LSTMCell, fr.LSTM, {}),
    (fr.LSTMCell, fr.LSTM, {"peephole": True, "coupled": True}),
    (fr.GRUCell, fr.GRU, {}),
    (fr.GRUCell, fr.GRU, {"reset_after": False}),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_equals_one_layer_step(cell_class, layer_class, options, dtype):
    cell = cell_class(3, 5, dtype=dtype, seed=3, **options)
    layer = layer_class(3, 5, dtype=dtype, seed=4, **options)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3)).astype(dtype)
    shapes = [(4, 5)] * (2 if cell_class is fr.LSTMCell else 1)
    states = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    pack = tuple if len(shapes) == 2 else (lambda p: p[0])

    h_new, cell_tape = cell.forward(x, pack(states))
    y, h_n, layer_tape = layer.forward(x[None], pack([s[None] for s in states]))
    for a, b in zip(_parts(h_new), _parts(h_n)):
        np.testing.assert_array_equal(a, b[0])
    np.testing.assert_array_equal(_parts(h_new)[0], y[0])
    dx, dhx = cell.backward(cell_tape, pack(grads))
    ldx, ldhx = layer.backward(layer_tape, None, pack([g[None] for g in grads]))
    np.testing.assert_array_equal(dx, ldx[0])
    for a, b in zip(_parts(dhx), _parts(ldhx)):
        np.testing.assert_array_equal(a, b[0])
    for name, grad in cell.grads.items():
        np.testing.assert_array_equal(grad, layer.grads[f"{name}_l0"])


def test_unbatched_cell_step_matches_batched():
    cell = fr.GRUCell(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal(3)
    h = np.random.default_rng(1).standard_normal(4)
    h_new, tape = cell.forward(x, h)
    assert h_new.shape == (4,)
    np.testing.assert_allclose(h_new, cell(x[None], h[None])[0], rtol=1e-14)
    dx, dh = cell.backward(tape, np.ones(4))
    assert dx.shape == (3,) and dh.shape == (4,)

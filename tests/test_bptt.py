"""Truncated BPTT: windows, chained tapes, state carry, and the per-step error guard."""

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.training import TruncatedBPTT

from ._compare import assert_close

F64 = np.float64


def _model(cell=fr.LSTM, layers=2):
    return fr.Sequential([cell(4, 6, num_layers=layers, dtype=F64, seed=0),
                          fr.Linear(6, 2, dtype=F64, seed=1)])


def _data(steps=11, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, batch, 4)), rng.standard_normal((steps, batch, 2))


def _window_reference(model, x, targets, start, scored, end, hx=None):
    """The gradient of one window, computed from scratch: forward [0, start) for the
    entering state, then one forward and backward over [start, end)."""
    state = model.forward(x[:start], hx)[1] if start > 0 else hx
    y, _, tape = model.forward(x[start:end], state)
    loss, dy_scored = fr.losses.mse(y[scored - start:], targets[scored:end])
    dy = np.zeros_like(y)
    dy[scored - start:] = dy_scored
    model.zero_grad()
    model.backward(tape, dy)
    return loss, model.flat_grads.copy()


@pytest.mark.parametrize("steps, k1, k2, windows", [
    (11, 11, None, [(0, 0, 11)]),
    (11, 3, None, [(0, 0, 3), (3, 3, 6), (6, 6, 9), (8, 9, 11)]),
    (11, 3, 5, [(0, 0, 3), (1, 3, 6), (4, 6, 9), (6, 9, 11)]),
    (11, 4, 8, [(0, 0, 4), (0, 4, 8), (3, 8, 11)]),
    (7, 10, 20, [(0, 0, 7)]),
])
def test_plan_follows_williams_and_peng(steps, k1, k2, windows):
    engine = TruncatedBPTT(_model(), fr.losses.mse, k1, k2)
    assert engine.plan(steps) == windows


@pytest.mark.parametrize("cell", [fr.RNN, fr.LSTM, fr.GRU])
@pytest.mark.parametrize("k1, k2", [(11, 11), (3, 3), (3, 5), (4, 8), (2, 7)])
def test_every_window_gradient_equals_its_definition(cell, k1, k2):
    model = _model(cell)
    x, targets = _data()
    engine = TruncatedBPTT(model, fr.losses.mse, k1, k2)
    seen = []
    state, mean_loss = engine.run(x, targets,
                                  on_window=lambda i, loss: seen.append((i, loss,
                                                                         model.flat_grads.copy())))
    assert [i for i, _, _ in seen] == list(range(len(engine.windows)))
    weighted = 0.0
    for (start, scored, end), (_, loss, grads) in zip(engine.windows, seen):
        expected_loss, expected = _window_reference(model, x, targets, start, scored, end)
        assert loss == pytest.approx(expected_loss, rel=1e-13)
        assert_close(grads, expected, 1e-12, f"window {(start, scored, end)}")
        weighted += loss * (end - scored)
    assert mean_loss == pytest.approx(weighted / len(x), rel=1e-14)
    _, expected_state = model(x)
    h, expected_h = (state[0][0], expected_state[0][0]) if cell is fr.LSTM else (
        state[0], expected_state[0])
    assert_close(h, expected_h, 1e-14, "final state")


def test_full_bptt_is_one_forward_and_backward():
    model = _model()
    x, targets = _data()
    engine = TruncatedBPTT(model, fr.losses.mse, k1=len(x))
    engine.run(x, targets)
    grads = model.flat_grads.copy()
    _, expected = _window_reference(model, x, targets, 0, 0, len(x))
    assert np.array_equal(grads, expected)


@pytest.mark.parametrize("k1, k2", [(5, 5), (5, 12), (3, 20)])
def test_tape_memory_is_bounded_by_the_windows_not_the_sequence(k1, k2):
    model = _model(fr.GRU, layers=1)
    x, targets = _data(steps=200, batch=2)
    engine = TruncatedBPTT(model, fr.losses.mse, k1, k2)
    engine.run(x, targets)
    assert engine.peak_tape_steps <= k1 + k2


def test_optimizer_steps_between_windows_see_each_windows_gradient():
    model = _model(fr.LSTM, layers=1)
    x, targets = _data(steps=12)
    before = model.flat_params.copy()
    engine = TruncatedBPTT(model, fr.losses.mse, k1=4)
    steps = []

    def sgd(i, loss):
        steps.append(model.flat_grads.copy())
        model.flat_params[...] -= 0.1 * model.flat_grads

    engine.run(x, targets, on_window=sgd)
    assert len(steps) == 3
    assert np.allclose(model.flat_params, before - 0.1 * sum(steps), rtol=0, atol=1e-15)
    # the second window ran with the weights after the first step
    check = _model(fr.LSTM, layers=1)
    check.flat_params[...] = before
    state = check.forward(x[:4])[1]
    check.flat_params[...] -= 0.1 * steps[0]
    _, expected = _window_reference(check, x[4:], targets[4:], 0, 0, 4, hx=state)
    assert_close(steps[1], expected, 1e-12, "second window")


def test_state_is_carried_only_when_passed_back():
    model = _model(fr.RNN)
    x, targets = _data(steps=12)
    whole_state, _ = TruncatedBPTT(model, fr.losses.mse, 3).run(x, targets)
    engine = TruncatedBPTT(model, fr.losses.mse, 3)
    first, _ = engine.run(x[:6], targets[:6])
    carried, _ = engine.run(x[6:], targets[6:], hx=first)
    reset, _ = engine.run(x[6:], targets[6:])
    assert_close(carried[0], whole_state[0], 1e-14, "carried state")
    assert not np.allclose(reset[0], whole_state[0])


def test_batch_first_layer_and_token_input():
    layer = fr.GRU(5, 4, batch_first=True, dtype=F64, seed=2)
    ids = np.random.default_rng(0).integers(0, 5, (3, 9))   # (B, T)
    targets = np.random.default_rng(1).standard_normal((3, 9, 4))
    engine = TruncatedBPTT(layer, fr.losses.mse, 4, 6, record_error_norms=True)
    state, _ = engine.run(ids, targets)
    assert state.shape == (1, 3, 4)
    assert engine.error_norms[0].shape == (1, 6, 3)   # last window: [3, 9)


def test_error_norms_are_the_gradient_reaching_each_state():
    layer = fr.LSTM(4, 5, dtype=F64, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 2, 4))
    targets = np.random.default_rng(1).standard_normal((8, 2, 5))
    engine = TruncatedBPTT(layer, fr.losses.mse, 8, record_error_norms=True)
    engine.run(x, targets)
    norms = engine.error_norms[0][0]
    y, _, _ = layer.forward(x)
    _, dy = fr.losses.mse(y, targets)
    for t in (7, 4, 0):
        # dL/dh_t = dy_t + the gradient of the steps after t with respect to their entering state
        state = layer.forward(x[:t + 1])[1]
        _, _, tape = layer.forward(x[t + 1:], state) if t < 7 else (None, None, None)
        dh = layer.backward(tape, dy[t + 1:])[1][0][0] if t < 7 else 0.0
        assert_close(norms[t], np.linalg.norm(dh + dy[t], axis=1), 1e-13, f"step {t}")


def _rnn_backward_reference(layer, x, dy, clip):
    """Float64 NumPy backward of a one-layer tanh RNN with per-step error clipping."""
    p = {k: v.astype(F64) for k, v in layer.state_dict().items()}
    steps, batch, _ = x.shape
    hs = [np.zeros((batch, layer.hidden_size))]
    for t in range(steps):
        hs.append(np.tanh(x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"]
                          + hs[-1] @ p["weight_hh_l0"].T + p["bias_hh_l0"]))
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dh = np.zeros((batch, layer.hidden_size))
    for t in reversed(range(steps)):
        dh = dh + dy[t]
        norms = np.linalg.norm(dh, axis=1, keepdims=True)
        dh = np.where(norms > clip, dh * clip / norms, dh)
        d_pre = dh * (1 - hs[t + 1] ** 2)
        grads["weight_ih_l0"] += d_pre.T @ x[t]
        grads["weight_hh_l0"] += d_pre.T @ hs[t]
        grads["bias_ih_l0"] += d_pre.sum(0)
        grads["bias_hh_l0"] += d_pre.sum(0)
        dh = d_pre @ p["weight_hh_l0"]
    return grads, dh


@pytest.mark.parametrize("clip", [0.05, 0.3, 1e9])
def test_per_step_error_clipping_matches_a_numpy_reference(clip):
    layer = fr.RNN(3, 5, dtype=F64, seed=4)
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((9, 2, 3)), rng.standard_normal((9, 2, 5))
    _, _, tape = layer.forward(x)
    layer.zero_grad()
    _, dh0 = layer.backward(tape, dy, error_clip=clip)
    expected, expected_dh0 = _rnn_backward_reference(layer, x, dy, clip)
    for name, grad in expected.items():
        assert_close(layer.grads[name], grad, 1e-13, name)
    assert_close(dh0[0], expected_dh0, 1e-13, "dh0")


@pytest.mark.parametrize("cell, hidden, batch", [(fr.LSTM, 5, 2), (fr.LSTM, 256, 32),
                                                 (fr.GRU, 5, 2), (fr.RNN, 5, 2)])
def test_error_clipping_bounds_the_error_at_every_step(cell, hidden, batch):
    """The clipped error entering each step: measured by the next backward through a
    chunk boundary, it never exceeds the clip."""
    layer = cell(4, hidden, dtype=F64, seed=1)
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((6, batch, 4)), 10 * rng.standard_normal((6, batch, hidden))
    state = layer.forward(x[:3])[1]
    _, _, late = layer.forward(x[3:], state)
    _, _, early = layer.forward(x[:3])
    clip = 0.5
    layer.zero_grad()
    _, dstate = layer.backward(late, dy[3:], error_clip=clip)
    norms = np.zeros((1, 3, batch))
    layer.backward(early, dy[:3], dstate, error_clip=clip, error_norms=norms)
    dh = dstate[0] if isinstance(dstate, tuple) else dstate
    assert np.linalg.norm(dh[0] + dy[2], axis=1) == pytest.approx(norms[0, 2], rel=1e-13)
    # an unclipped step-3 error is much larger than the clip: the clip did bind
    _, free = layer.backward(late, dy[3:])
    free = free[0] if isinstance(free, tuple) else free
    assert np.linalg.norm(free[0], axis=1).max() > 2 * clip


@pytest.mark.parametrize("make, error, message", [
    (lambda: TruncatedBPTT(object(), fr.losses.mse, 3), TypeError,
     r"model must be a RNN, LSTM, GRU or Sequential"),
    (lambda: TruncatedBPTT(fr.GRU(2, 3, bidirectional=True), fr.losses.mse, 3), ValueError,
     r"model must be unidirectional"),
    (lambda: TruncatedBPTT(fr.GRU(2, 3), "mse", 3), TypeError, r"loss_fn must be callable"),
    (lambda: TruncatedBPTT(fr.GRU(2, 3), fr.losses.mse, 0), ValueError, r"k1 must be an int >= 1"),
    (lambda: TruncatedBPTT(fr.GRU(2, 3), fr.losses.mse, 5, 3), ValueError,
     r"k2 must be >= k1=5, got 3"),
    (lambda: TruncatedBPTT(fr.GRU(2, 3), fr.losses.mse, 5, error_clip=-1.0), ValueError,
     r"error_clip must be positive and finite, got -1\.0"),
])
def test_bad_engine_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_run_arguments():
    layer = fr.RNN(2, 3, dtype=F64)
    engine = TruncatedBPTT(layer, fr.losses.mse, 2)
    x = np.zeros((4, 1, 2))
    with pytest.raises(ValueError, match=r"targets must have 4 time steps \(axis 0\) like x"):
        engine.run(x, np.zeros((3, 1, 3)))
    with pytest.raises(TypeError, match=r"on_window must be callable or None"):
        engine.run(x, np.zeros((4, 1, 3)), on_window=3)
    with pytest.raises(ValueError, match=r"x must have at least one time step \(axis 0\), got "
                                         r"shape \(0, 1, 2\)"):
        engine.run(x[:0], np.zeros((0, 1, 3)))
    bad_loss = TruncatedBPTT(layer, lambda y, t: (0.0, y[:1]), 2)
    with pytest.raises(ValueError, match=r"loss_fn must return dy of the output's shape"):
        bad_loss.run(x, np.zeros((4, 1, 3)))
    with pytest.raises(TypeError, match=r"loss_fn must return a pair"):
        TruncatedBPTT(layer, lambda y, t: 0.0, 2).run(x, np.zeros((4, 1, 3)))


def test_layer_guard_arguments_are_checked():
    layer = fr.RNN(2, 3, dtype=F64)
    _, _, tape = layer.forward(np.zeros((4, 1, 2)))
    with pytest.raises(ValueError, match=r"error_clip must be positive and finite, got 0"):
        layer.backward(tape, None, error_clip=0)
    with pytest.raises(TypeError, match=r"error_norms must be a float64 ndarray of shape "
                                        r"\(1, 4, 1\)"):
        layer.backward(tape, None, error_norms=np.zeros((1, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"error_norms must have shape \(1, 4, 1\)"):
        layer.backward(tape, None, error_norms=np.zeros((1, 4, 2)))


def test_windows_that_score_nothing_skip_the_backward():
    """A loss that scores only the last step: earlier windows have zero gradients, and
    the last window's gradient is that of the whole span."""
    model = _model(fr.GRU, layers=1)
    x, targets = _data(steps=12)

    def last_step_only(y, target):
        dy = np.zeros_like(y)
        if len(y) == 4 and np.array_equal(target, targets[8:]):
            loss, dy[-1] = fr.losses.mse(y[-1], target[-1])
            return loss, dy
        return 0.0, dy

    calls = []
    real_backward = model.backward
    model.backward = lambda *args, **kw: (calls.append(1), real_backward(*args, **kw))[1]
    grads = []
    TruncatedBPTT(model, last_step_only, 4, 12).run(
        x, targets, on_window=lambda i, loss: grads.append(model.flat_grads.copy()))
    del model.backward
    assert not grads[0].any() and not grads[1].any()
    assert len(calls) == 3          # the last window's three chunks only
    y, _, tape = model.forward(x)
    dy = np.zeros_like(y)
    dy[-1] = fr.losses.mse(y[-1], targets[-1])[1]
    model.zero_grad()
    model.backward(tape, dy)
    assert_close(grads[2], model.flat_grads, 1e-12, "last window")

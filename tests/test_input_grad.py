"""``backward(..., input_grad=False)``: no input gradient, every other result unchanged."""

import numpy as np
import pytest

import fastrnn as fr


def _backward(layer, x, dy, **options):
    layer.zero_grad()
    y, _, tape = layer.forward(x)
    dx, dhx = layer.backward(tape, dy, **options)
    return dx, dhx, layer.flat_grads.copy()


@pytest.mark.parametrize("cls", [fr.RNN, fr.LSTM, fr.GRU])
@pytest.mark.parametrize("shape, options", [
    ((7, 3, 5, 6), dict(num_layers=2, bidirectional=True)),   # serial scans
    ((6, 32, 28, 64), dict()),                                # threaded scans, input in the scan
    ((5, 16, 96, 64), dict()),                                # threaded scans, projected input
])
def test_same_gradients_without_the_input_gradient(cls, shape, options):
    steps, batch, features, hidden = shape
    layer = cls(features, hidden, dtype=np.float64, seed=3, **options)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, features))
    dy = rng.standard_normal((steps, batch, hidden * layer.num_directions))
    dx, dhx, grads = _backward(layer, x, dy)
    none, dhx_without, grads_without = _backward(layer, x, dy, input_grad=False)
    assert dx.shape == x.shape and none is None
    np.testing.assert_array_equal(grads_without, grads)
    pairs = zip(dhx_without, dhx) if isinstance(dhx, tuple) else [(dhx_without, dhx)]
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def test_the_input_gradient_is_not_computed(monkeypatch):
    """The skipped GEMM is not run at all (the CPU kernels' ``dx += d_pre @ W_ih``)."""
    from fastrnn.kernels.cpu import _common
    calls = []
    product = _common.accumulate_product
    monkeypatch.setattr(_common, "accumulate_product",
                        lambda *args, **kw: calls.append(args[0].shape) or product(*args, **kw))
    layer = fr.LSTM(96, 64, seed=0)
    x = np.random.default_rng(0).standard_normal((20, 16, 96)).astype(np.float32)
    y, _, tape = layer.forward(x)
    layer.backward(tape, np.ones_like(y), input_grad=False)
    assert calls == []
    y, _, tape = layer.forward(x)
    layer.backward(tape, np.ones_like(y))
    assert calls == [(20, 16, 96)]


def test_sequential_skips_only_the_first_layer_input_gradient():
    model = fr.Sequential([fr.LSTM(4, 5, dtype=np.float64, seed=1),
                           fr.GRU(5, 3, dtype=np.float64, seed=2),
                           fr.Linear(3, 2, dtype=np.float64, seed=3)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 4))
    dy = rng.standard_normal((6, 2, 2))
    results = []
    for input_grad in (True, False):
        model.zero_grad()
        out, _, tape = model.forward(x)
        dx, dhx = model.backward(tape, dy, input_grad=input_grad)
        results.append((dx, dhx, model.flat_grads.copy()))
    assert results[0][0].shape == x.shape and results[1][0] is None
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_truncated_bptt_gradients_do_not_need_it():
    """The engine passes input_grad=False: its gradients equal a full backward's."""
    layer = fr.LSTM(3, 4, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2, 3))
    targets = rng.standard_normal((8, 2, 4))

    def loss(y, t):
        return 0.5 * float(((y - t) ** 2).sum()), y - t

    engine = fr.training.TruncatedBPTT(layer, loss, 8)
    seen = []
    engine.run(x, targets, on_window=lambda i, value: seen.append(layer.flat_grads.copy()))
    assert len(seen) == 1
    from_engine = seen[0]
    layer.zero_grad()
    y, _, tape = layer.forward(x)
    layer.backward(tape, y - targets)
    np.testing.assert_allclose(from_engine, layer.flat_grads, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_input_grad_must_be_a_bool(bad):
    layer = fr.GRU(3, 4)
    y, _, tape = layer.forward(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(TypeError, match=r"input_grad must be True or False, got"):
        layer.backward(tape, None, input_grad=bad)
    model = fr.Sequential([fr.GRU(3, 4)])
    y, _, tape = model.forward(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(TypeError, match=r"input_grad must be True or False, got"):
        model.backward(tape, None, input_grad=bad)

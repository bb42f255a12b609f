"""Every output and gradient against torch 2.13 on random configurations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn as fr

from . import _torch_ref
from ._compare import assert_close
from ._configs import build_layer, layer_configs, random_call

#: The cells torch has (no peepholes, no coupled gates, no reset-before GRU).
TORCH_CELLS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]

TOLERANCES = {  # (forward, gradients)
    np.float64: (1e-10, 1e-10),
    np.float32: (1e-5, 1e-4),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@settings(max_examples=100, deadline=None, derandomize=True)
@given(config=layer_configs(cells=TORCH_CELLS), dh_given=st.booleans())
def test_matches_torch(config, dh_given, dtype):
    _torch_ref.load_torch()
    layer = build_layer(config, dtype)
    # torch's packed sequences need every length >= 1
    x, hx, lengths, dy, dh_n = random_call(layer, config, dtype, min_length=1)
    forward_tol, grad_tol = TOLERANCES[dtype]

    y, h_n, tape = layer.forward(x, hx, lengths)
    dx, dhx = layer.backward(tape, dy, dh_n if dh_given else None)
    if not dh_given:
        dh_n = (tuple(np.zeros_like(a) for a in h_n) if isinstance(h_n, tuple)
                else np.zeros_like(h_n))
    ty, th_n, tdx, tdhx, tgrads = _torch_ref.torch_forward_backward(layer, x, hx, lengths, dy, dh_n)

    assert_close(y, ty, forward_tol, "y")
    assert_close(h_n, th_n, forward_tol, "h_n")
    assert_close(dx, tdx, grad_tol, "dx")
    if hx is not None:
        assert_close(dhx, tdhx, grad_tol, "dhx")
    assert set(layer.grads) == set(tgrads)
    for name, grad in tgrads.items():
        assert_close(layer.grads[name], grad, grad_tol, f"grad {name}")


@pytest.mark.parametrize("make_torch, make_ours", [
    (lambda t: t.nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2),
     lambda: fr.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float64)),
    (lambda t: t.nn.GRU(3, 5, bias=False), lambda: fr.GRU(3, 5, bias=False, dtype=np.float64)),
    (lambda t: t.nn.RNN(3, 4, nonlinearity="relu", batch_first=True),
     lambda: fr.RNN(3, 4, nonlinearity="relu", batch_first=True, dtype=np.float64)),
    (lambda t: t.nn.LSTMCell(3, 4), lambda: fr.LSTMCell(3, 4, dtype=np.float64)),
    (lambda t: t.nn.GRUCell(3, 4), lambda: fr.GRUCell(3, 4, dtype=np.float64)),
    (lambda t: t.nn.RNNCell(3, 4), lambda: fr.RNNCell(3, 4, dtype=np.float64)),
])
def test_weights_move_from_torch(make_torch, make_ours):
    torch = _torch_ref.load_torch()
    module = make_torch(torch).double()
    ours = make_ours()
    ours.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    if isinstance(ours, (fr.LSTMCell, fr.GRUCell, fr.RNNCell)):
        x = x[0]
    with torch.no_grad():
        expected = module(torch.from_numpy(x))
    got = ours(x)
    expected = expected[0] if isinstance(expected, tuple) else expected
    got = got[0] if isinstance(got, tuple) else got
    assert_close(got, expected.numpy(), 1e-12, "output")

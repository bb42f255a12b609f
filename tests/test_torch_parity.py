"""Every output and gradient against torch 2.13 on random configurations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn as fr

from . import _torch_ref
from ._compare import assert_close

TOLERANCES = {  # (forward, gradients)
    np.float64: (1e-10, 1e-10),
    np.float32: (1e-5, 1e-4),
}


@st.composite
def configurations(draw):
    """A random layer configuration and the shapes of one call."""
    cell = draw(st.sampled_from(["rnn-tanh", "rnn-relu", "lstm", "gru"]))
    hidden = draw(st.integers(1, 6))
    config = dict(
        cell=cell,
        input_size=draw(st.integers(1, 5)),
        hidden_size=hidden,
        num_layers=draw(st.integers(1, 3)),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bidirectional=draw(st.booleans()),
        proj_size=draw(st.integers(0, hidden - 1)) if cell == "lstm" else 0,
        steps=draw(st.integers(1, 6)),
        batch=draw(st.integers(1, 4)),
        unbatched=draw(st.booleans()),
        hx_given=draw(st.booleans()),
        dh_given=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )
    config["use_lengths"] = draw(st.booleans()) and not config["unbatched"]
    return config


def build_layer(config, dtype):
    cell = config["cell"]
    options = dict(num_layers=config["num_layers"], bias=config["bias"],
                   batch_first=config["batch_first"], bidirectional=config["bidirectional"],
                   dtype=dtype, seed=config["seed"])
    if cell.startswith("rnn"):
        return fr.RNN(config["input_size"], config["hidden_size"],
                      nonlinearity=cell.split("-")[1], **options)
    if cell == "lstm":
        return fr.LSTM(config["input_size"], config["hidden_size"],
                       proj_size=config["proj_size"], **options)
    return fr.GRU(config["input_size"], config["hidden_size"], **options)


def random_inputs(layer, config, dtype):
    """x, hx, lengths, dy and dh_n in the layer's user-facing layout."""
    rng = np.random.default_rng(config["seed"] + 1)
    steps, batch = config["steps"], config["batch"]
    rows = layer.num_layers * layer.num_directions
    out = layer.spec.output_size
    lead = () if config["unbatched"] else ((batch, steps) if layer.batch_first else (steps, batch))
    state_batch = () if config["unbatched"] else (batch,)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = normal(*lead, layer.input_size) if lead else normal(steps, layer.input_size)
    state_shapes = [(rows, *state_batch, out)]
    if layer.spec.has_cell_state:
        state_shapes.append((rows, *state_batch, layer.hidden_size))
    states = [normal(*s) for s in state_shapes]
    grads = [normal(*s) for s in state_shapes]
    pack = tuple if layer.spec.has_cell_state else (lambda parts: parts[0])
    hx = pack(states) if config["hx_given"] else None
    dh_n = pack(grads)
    lengths = rng.integers(1, steps + 1, size=batch) if config["use_lengths"] else None
    y_lead = lead if lead else (steps,)
    dy = normal(*y_lead, layer.num_directions * out)
    return x, hx, lengths, dy, dh_n


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(config=configurations())
def test_matches_torch(config, dtype):
    _torch_ref.load_torch()
    layer = build_layer(config, dtype)
    x, hx, lengths, dy, dh_n = random_inputs(layer, config, dtype)
    forward_tol, grad_tol = TOLERANCES[dtype]

    y, h_n, tape = layer.forward(x, hx, lengths)
    dx, dhx = layer.backward(tape, dy, dh_n if config["dh_given"] else None)
    if not config["dh_given"]:
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

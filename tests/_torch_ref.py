"""Run the same configuration through ``torch.nn`` and collect every gradient."""

import numpy as np

torch = None


def load_torch():
    """Import torch (the reference), or skip the calling test cleanly."""
    global torch
    import pytest
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def torch_layer(layer):
    """A ``torch.nn`` module with the same configuration and weights as ``layer``."""
    kind = type(layer).__name__
    options = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                   bidirectional=layer.bidirectional)
    if kind == "RNN":
        module = torch.nn.RNN(layer.input_size, layer.hidden_size,
                              nonlinearity=layer.spec.nonlinearity, **options)
    elif kind == "LSTM":
        module = torch.nn.LSTM(layer.input_size, layer.hidden_size,
                               proj_size=layer.spec.proj_size, **options)
    else:
        module = torch.nn.GRU(layer.input_size, layer.hidden_size, **options)
    module = module.to(torch.float64 if layer.dtype == np.float64 else torch.float32)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return module


def torch_forward_backward(layer, x, hx, lengths, dy, dh_n):
    """Forward and backward in torch with the loss ``sum(y*dy) + sum(h_n*dh_n)``.

    Returns ``(y, h_n, dx, dhx, grads)`` as NumPy arrays (pairs for the LSTM).
    """
    module = torch_layer(layer)
    is_lstm = type(layer).__name__ == "LSTM"
    xt = torch.tensor(x, requires_grad=True)
    if hx is None:
        hxt = None
    elif is_lstm:
        hxt = tuple(torch.tensor(h, requires_grad=True) for h in hx)
    else:
        hxt = torch.tensor(hx, requires_grad=True)
    if lengths is None:
        yt, hnt = module(xt, hxt)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=layer.batch_first, enforce_sorted=False)
        out, hnt = module(packed, hxt)
        steps = x.shape[1 if layer.batch_first else 0]
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=layer.batch_first,
                                                       total_length=steps)
    loss = (yt * torch.from_numpy(dy)).sum()
    states = hnt if is_lstm else (hnt,)
    grads_n = dh_n if is_lstm else (dh_n,)
    for state, grad in zip(states, grads_n):
        loss = loss + (state * torch.from_numpy(grad)).sum()
    loss.backward()
    dhx = None
    if hx is not None:
        dhx = tuple(h.grad.numpy() for h in hxt) if is_lstm else hxt.grad.numpy()
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    h_n = tuple(s.detach().numpy() for s in states) if is_lstm else hnt.detach().numpy()
    return yt.detach().numpy(), h_n, xt.grad.numpy(), dhx, grads

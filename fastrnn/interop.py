"""Move layers between fastrnn and PyTorch: :func:`to_torch` and :func:`from_torch`.

fastrnn's layers have PyTorch's parameter names, shapes and gate orders, so a
conversion is the matching constructor plus a copy of the ``state_dict``: the
weights arrive bit for bit and the two compute the same function (to
rounding: about 1e-15 relative in float64).

Converted: :class:`~fastrnn.RNN`, :class:`~fastrnn.LSTM`, :class:`~fastrnn.GRU`
(every option torch has: ``num_layers``, ``bias``, ``batch_first``,
``dropout``, ``bidirectional``, ``proj_size``, ``nonlinearity``), the cells
:class:`~fastrnn.RNNCell`, :class:`~fastrnn.LSTMCell`, :class:`~fastrnn.GRUCell`,
:class:`~fastrnn.Linear` and :class:`~fastrnn.Embedding`, in float32 or
float64. fastrnn-only variants (peephole or coupled LSTM, GRU with
``reset_after=False``) and torch options fastrnn lacks (an Embedding's
``padding_idx``, ``max_norm``, ``scale_grad_by_freq``) raise ``ValueError``.

PyTorch is not a dependency of fastrnn: it is imported by these functions,
on first call, never by ``import fastrnn`` or ``import fastrnn.interop``.
"""

import numpy as np

from ._validation import check_choice, describe
from .device import DEVICES
from .nn import GRU, LSTM, RNN, Embedding, GRUCell, Linear, LSTMCell, RNNCell

#: fastrnn class -> torch.nn class name.
_TORCH_NAMES = {RNN: "RNN", LSTM: "LSTM", GRU: "GRU", RNNCell: "RNNCell",
                LSTMCell: "LSTMCell", GRUCell: "GRUCell", Linear: "Linear",
                Embedding: "Embedding"}
_CLASSES = {name: cls for cls, name in _TORCH_NAMES.items()}
_LAYERS = (RNN, LSTM, GRU)


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError("fastrnn.interop needs PyTorch: pip install torch") from error
    return torch


def _spec(model):
    """The cell spec of a layer or a cell (a cell wraps a one-layer layer)."""
    return model.spec if isinstance(model, _LAYERS) else model._layer.spec


def _check_torch_has(model):
    """Refuse the fastrnn-only cell variants."""
    spec = _spec(model)
    name = type(model).__name__
    for option, value, reason in (
            ("peephole", spec.peephole, "has no peephole weights"),
            ("coupled", spec.coupled, "has no coupled (CIFG) input and forget gates"),
            ("reset_after", not spec.reset_after, "applies the reset gate after the "
                                                  "recurrent product only")):
        if value:
            shown = "False" if option == "reset_after" else "True"
            raise ValueError(f"model {name}({option}={shown}) has no PyTorch equivalent: "
                             f"torch.nn.{_TORCH_NAMES[type(model)]} {reason}")


def _torch_arguments(model):
    """``(args, kwargs)`` of the torch constructor matching ``model``."""
    if isinstance(model, Linear):
        return (model.in_features, model.out_features), dict(bias=model.bias)
    if isinstance(model, Embedding):
        return (model.num_embeddings, model.embedding_dim), {}
    _check_torch_has(model)
    spec = _spec(model)
    options = dict(bias=spec.bias)
    if spec.kind == "rnn":
        options["nonlinearity"] = spec.nonlinearity
    if isinstance(model, _LAYERS):
        options.update(num_layers=model.num_layers, batch_first=model.batch_first,
                       dropout=model.dropout, bidirectional=model.bidirectional)
        if spec.kind == "lstm":
            options["proj_size"] = spec.proj_size
    return (model.input_size, model.hidden_size), options


def to_torch(model):
    """The ``torch.nn`` module equivalent to a fastrnn layer, with a copy of its weights.

    Parameters
    ----------
    model : RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, Linear or Embedding
        float32 or float64; not a peephole/coupled LSTM nor a GRU with
        ``reset_after=False``.

    Returns
    -------
    torch.nn.Module
        On the CPU, of the model's dtype, in torch's default training mode
        (call ``.eval()`` to turn its dropout off, as fastrnn's inference
        ``layer(x)`` does).

    Raises
    ------
    TypeError
        For anything else (a :class:`~fastrnn.Sequential`: convert its layers
        one by one).
    ValueError
        For a fastrnn-only variant.
    """
    if type(model) not in _TORCH_NAMES:
        hint = (" (convert its layers one by one: [to_torch(layer) for layer in model.layers])"
                if type(model).__name__ == "Sequential" else "")
        raise TypeError("model must be a fastrnn RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, "
                        f"Linear or Embedding, got {describe(model)}{hint}")
    args, kwargs = _torch_arguments(model)
    torch = _import_torch()
    module = getattr(torch.nn, _TORCH_NAMES[type(model)])(
        *args, **kwargs, dtype=getattr(torch, model.dtype.name))
    module.load_state_dict({name: torch.from_numpy(value)
                            for name, value in model.state_dict().items()})
    return module


def _check_embedding(module):
    for option, value, default in (("padding_idx", module.padding_idx, None),
                                   ("max_norm", module.max_norm, None),
                                   ("scale_grad_by_freq", module.scale_grad_by_freq, False)):
        if value != default:
            raise ValueError(f"module Embedding({option}={value!r}) has no fastrnn equivalent: "
                             f"fastrnn.Embedding supports {option}={default!r} only")


def _fastrnn_arguments(module):
    """``(args, kwargs)`` of the fastrnn constructor matching a torch module."""
    name = type(module).__name__
    if name == "Linear":
        return (module.in_features, module.out_features), dict(bias=module.bias is not None)
    if name == "Embedding":
        _check_embedding(module)
        return (module.num_embeddings, module.embedding_dim), {}
    options = dict(bias=module.bias)
    if name.startswith("RNN"):
        options["nonlinearity"] = module.nonlinearity
    if name in ("RNN", "LSTM", "GRU"):
        options.update(num_layers=module.num_layers, batch_first=module.batch_first,
                       dropout=float(module.dropout), bidirectional=module.bidirectional)
        if name == "LSTM":
            options["proj_size"] = module.proj_size
    return (module.input_size, module.hidden_size), options


def from_torch(module, *, device="auto"):
    """The fastrnn layer equivalent to a ``torch.nn`` module, with a copy of its weights.

    Parameters
    ----------
    module : torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, Linear or Embedding
        With float32 or float64 parameters, on any torch device (they are
        copied to host memory).
    device : {"auto", "cpu", "cuda"}
        Where the fastrnn layer runs (not Embedding, which has no device).

    Returns
    -------
    RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, Linear or Embedding

    Raises
    ------
    TypeError
        For another kind of module (subclasses included: their forward may
        differ) or parameters of another dtype.
    ValueError
        For an Embedding with ``padding_idx``, ``max_norm`` or
        ``scale_grad_by_freq``.
    """
    check_choice("device", device, DEVICES)
    name = type(module).__name__
    torch_module = type(module).__module__
    if name not in _CLASSES or not torch_module.startswith("torch.nn."):
        raise TypeError("module must be a torch.nn RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, "
                        f"Linear or Embedding, got {describe(module)}")
    tensors = module.state_dict()
    dtypes = sorted({str(value.dtype).replace("torch.", "") for value in tensors.values()})
    if len(dtypes) != 1 or dtypes[0] not in ("float32", "float64"):
        raise TypeError(f"module must have float32 or float64 parameters, got {dtypes}")
    state = {key: value.detach().cpu().numpy() for key, value in tensors.items()}
    args, kwargs = _fastrnn_arguments(module)
    cls = _CLASSES[name]
    if cls is not Embedding:
        kwargs["device"] = device
    layer = cls(*args, **kwargs, dtype=np.dtype(dtypes[0]))
    layer.load_state_dict(state)
    return layer

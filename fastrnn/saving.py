"""Save a model to one file and load it back: :func:`save` and :func:`load`.

A model file is a fastrnn ``.npz`` (:mod:`fastrnn.io`: no pickle, written
atomically, format-versioned) of kind ``"model"``. Its arrays are the model's
``state_dict()`` (PyTorch's parameter names); its JSON metadata describes the
model: the class and the constructor arguments of every layer, for example::

    {"model": {"class": "Sequential", "layers": [
                 {"class": "LSTM", "args": {"input_size": 3, "hidden_size": 8, ...}},
                 {"class": "Linear", "args": {"in_features": 8, ...}}]},
     "model_version": 1, "fastrnn_version": "...",
     "format": "fastrnn", "version": 1, "kind": "model"}

:func:`load` rebuilds the layers from that description and copies the arrays
in, after checking that every expected array is there, with the expected
shape and dtype, and nothing else is: the loaded model has bitwise the saved
parameters, so it computes bitwise the same outputs on the same device.

Not saved: gradients, optimizer state (see :meth:`fastrnn.training.optimizers.
Optimizer.state_dict`), the random state of dropout masks, and the device
(``load`` takes one).
"""

from . import io
from ._validation import check_choice, describe
from ._version import __version__
from .nn import GRU, LSTM, RNN, Dropout, Embedding, GRUCell, Linear, LSTMCell, RNNCell, Sequential
from .device import DEVICES, to_numpy

#: Version of the model description in the metadata; :func:`load` refuses newer ones.
MODEL_VERSION = 1
KIND = "model"


def _recurrent_args(layer):
    spec = layer.spec
    args = dict(input_size=layer.input_size, hidden_size=layer.hidden_size,
                num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                dropout=layer.dropout, bidirectional=layer.bidirectional,
                dtype=layer.dtype.name)
    return dict(args, **_cell_args(type(layer).__name__, spec))


def _cell_args(name, spec):
    """The cell-specific constructor arguments of a layer or cell class ``name``."""
    if name.startswith("RNN"):
        return dict(nonlinearity=spec.nonlinearity)
    if name.startswith("LSTM"):
        options = dict(peephole=spec.peephole, coupled=spec.coupled)
        return options if name == "LSTMCell" else dict(options, proj_size=spec.proj_size)
    return dict(reset_after=spec.reset_after)


def _cell_class_args(cell):
    layer = cell._layer
    return dict(input_size=cell.input_size, hidden_size=cell.hidden_size, bias=layer.bias,
                dtype=cell.dtype.name, **_cell_args(type(cell).__name__, layer.spec))


#: Saved class name -> (class, constructor arguments of an instance, takes ``device=``).
_CLASSES = {
    "RNN": (RNN, _recurrent_args, True),
    "LSTM": (LSTM, _recurrent_args, True),
    "GRU": (GRU, _recurrent_args, True),
    "RNNCell": (RNNCell, _cell_class_args, True),
    "LSTMCell": (LSTMCell, _cell_class_args, True),
    "GRUCell": (GRUCell, _cell_class_args, True),
    "Linear": (Linear, lambda m: dict(in_features=m.in_features, out_features=m.out_features,
                                      bias=m.bias, dtype=m.dtype.name), True),
    "Embedding": (Embedding, lambda m: dict(num_embeddings=m.num_embeddings,
                                            embedding_dim=m.embedding_dim,
                                            dtype=m.dtype.name), True),
    "Dropout": (Dropout, lambda m: dict(p=m.p), False),
}


def describe_model(model):
    """The JSON-serialisable description of ``model``'s classes and constructor arguments.

    Raises
    ------
    TypeError
        For anything that is not a fastrnn layer, cell or :class:`~fastrnn.Sequential`
        of them.
    """
    if type(model) is Sequential:
        return {"class": "Sequential", "layers": [describe_model(layer) for layer in model.layers]}
    name = type(model).__name__
    if name not in _CLASSES or type(model) is not _CLASSES[name][0]:
        raise TypeError("model must be a fastrnn RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, "
                        f"Linear, Embedding, Dropout or Sequential, got {describe(model)}")
    return {"class": name, "args": _CLASSES[name][1](model)}


def build_model(description, arrays, device="auto", source="the model"):
    """Rebuild a model from :func:`describe_model`'s description and its ``state_dict`` arrays.

    Parameters
    ----------
    description : dict
    arrays : dict of str to ndarray
        Exactly the model's parameters by name, each of the expected shape and dtype.
    device : {"auto", "cpu", "cuda"}
    source : str
        Where the description came from, for error messages (a file name).

    Raises
    ------
    ValueError
        For a description this fastrnn does not understand, or arrays that
        are missing, unexpected, or of the wrong shape or dtype.
    """
    check_choice("device", device, DEVICES)
    model = _construct(description, device, source, "model")
    expected = model.params
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source} does not match its description ({description['class']}): "
                         f"missing arrays {missing}, unexpected arrays {unexpected}")
    for name, value in expected.items():
        array = arrays[name]
        if array.shape != value.shape or array.dtype != value.dtype:
            raise ValueError(f"{source}: array {name!r} must have shape {value.shape} and dtype "
                             f"{value.dtype}, got {describe(array)}")
        value[...] = array
    return model


def _construct(description, device, source, where):
    """A freshly initialised model of the described classes and arguments."""
    if not isinstance(description, dict) or not isinstance(description.get("class"), str):
        raise ValueError(f"{source}: {where} must be described by a dict with a 'class' name, "
                         f"got {describe(description)}")
    name = description["class"]
    if name == "Sequential":
        layers = description.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"{source}: {where} (Sequential) must list its layers, "
                             f"got {describe(layers)}")
        cls, args = Sequential, dict(layers=[
            _construct(layer, device, source, f"{where}.layers[{index}]")
            for index, layer in enumerate(layers)])
    elif name not in _CLASSES:
        raise ValueError(f"{source}: {where} is of unknown class {name!r}; this fastrnn "
                         f"({__version__}) loads {', '.join(sorted(_CLASSES))} and Sequential")
    else:
        cls, _, takes_device = _CLASSES[name]
        args = description.get("args")
        if not isinstance(args, dict):
            raise ValueError(f"{source}: {where} ({name}) must have a dict of constructor "
                             f"arguments, got {describe(args)}")
        if takes_device:
            args = dict(args, device=device)
    try:
        return cls(**args)
    except (TypeError, ValueError) as error:
        shown = "layers" if cls is Sequential else f"**{args!r}"
        raise ValueError(f"{source}: cannot rebuild {where} as {name}({shown}): "
                         f"{error}") from None


def save(path, model):
    """Write ``model`` (parameters and architecture) to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file, written exactly there (no suffix added). An existing file is
        replaced in one rename: a write that fails or is killed leaves it as
        it was.
    model : RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, Linear, Embedding, Dropout or Sequential
        Its parameters are saved in their dtype (float32 or float64).

    Examples
    --------
    >>> import os, tempfile, numpy as np, fastrnn as fr
    >>> model = fr.Sequential([fr.GRU(2, 4, seed=0), fr.Linear(4, 1, seed=1)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> fr.save(path, model)
    >>> again = fr.load(path)
    >>> x = np.ones((5, 3, 2), np.float32)
    >>> bool(np.array_equal(model(x)[0], again(x)[0]))
    True
    """
    description = describe_model(model)
    metadata = {"model": description, "model_version": MODEL_VERSION,
                "fastrnn_version": __version__}
    arrays = {name: to_numpy(value) for name, value in model.params.items()}  # GPU: copied
    io.save_arrays(path, arrays, metadata, KIND)


def load(path, *, device="auto"):
    """The model saved by :func:`save` at ``path``, on ``device``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the rebuilt model's parameters live.

    Returns
    -------
    model
        A layer, cell or :class:`~fastrnn.Sequential` of the saved class, built
        with the saved constructor arguments and holding the saved parameters
        bit for bit (same dtype).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a fastrnn model file, was written by a newer
        fastrnn (format or model description), describes a class this fastrnn
        does not know, or holds arrays that are missing, unexpected or of the
        wrong shape or dtype.
    """
    arrays, metadata = io.load_arrays(path, KIND)
    source = repr(str(path))
    version = metadata.get("model_version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise ValueError(f"{source} has model description version {version!r}; this fastrnn "
                         f"reads versions up to {MODEL_VERSION}: upgrade fastrnn")
    return build_model(metadata.get("model"), arrays, device, source)

"""to_torch / from_torch: weights bit for bit both ways, outputs equal to rounding."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastrnn as fr  # noqa: E402
from fastrnn import saving  # noqa: E402
from fastrnn.interop import from_torch, to_torch  # noqa: E402

from ._compare import relative_error  # noqa: E402

F64 = np.float64

LAYERS = {
    "rnn-tanh": lambda: fr.RNN(3, 5, dtype=F64, seed=0),
    "rnn-relu-2-layers-bidirectional-batch-first": lambda: fr.RNN(
        3, 5, 2, nonlinearity="relu", bidirectional=True, batch_first=True, dtype=F64, seed=1),
    "rnn-no-bias-dropout": lambda: fr.RNN(3, 4, 3, bias=False, dropout=0.5, dtype=F64, seed=2),
    "lstm": lambda: fr.LSTM(3, 5, dtype=F64, seed=3),
    "lstm-projected-bidirectional-2-layers": lambda: fr.LSTM(
        3, 6, 2, proj_size=2, bidirectional=True, dtype=F64, seed=4),
    "lstm-batch-first-no-bias": lambda: fr.LSTM(3, 4, batch_first=True, bias=False, dtype=F64,
                                                seed=5),
    "gru": lambda: fr.GRU(3, 5, dtype=F64, seed=6),
    "gru-2-layers-bidirectional-dropout": lambda: fr.GRU(3, 4, 2, bidirectional=True,
                                                         dropout=0.25, dtype=F64, seed=7),
    "lstm-float32": lambda: fr.LSTM(3, 5, 2, seed=8),
}

OTHERS = {
    "rnn-cell-relu": lambda: fr.RNNCell(3, 4, nonlinearity="relu", dtype=F64, seed=9),
    "lstm-cell-no-bias": lambda: fr.LSTMCell(3, 4, bias=False, dtype=F64, seed=10),
    "gru-cell": lambda: fr.GRUCell(3, 4, dtype=F64, seed=11),
    "linear": lambda: fr.Linear(3, 2, dtype=F64, seed=12),
    "linear-no-bias-float32": lambda: fr.Linear(3, 2, bias=False, seed=13),
    "embedding": lambda: fr.Embedding(9, 3, dtype=F64, seed=14),
}


def _assert_same_weights(ours, module):
    theirs = module.state_dict()
    assert sorted(ours.params) == sorted(theirs)
    for name, value in ours.params.items():
        other = theirs[name].numpy()
        assert other.dtype == value.dtype and np.array_equal(other, value), name


def _torch_outputs(module, x, tokens=False):
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(x))
    if isinstance(out, tuple):  # (y, h_n) or (h_n, c_n) for a cell, ((h_n, c_n)) for LSTM
        flat = []
        for part in out:
            flat.extend(part if isinstance(part, tuple) else (part,))
        return [part.numpy() for part in flat]
    return [out.numpy()]


def _fastrnn_outputs(layer, x):
    out = layer(x)
    if isinstance(out, tuple):
        flat = []
        for part in out:
            flat.extend(part if isinstance(part, tuple) else (part,))
        return flat
    return [out]


def _input(layer, rng):
    if isinstance(layer, fr.Embedding):
        return rng.integers(0, layer.num_embeddings, size=(6, 2))
    size = layer.in_features if isinstance(layer, fr.Linear) else layer.input_size
    shape = (2, size) if type(layer).__name__.endswith("Cell") else (6, 2, size)
    return rng.normal(size=shape).astype(layer.dtype)


def _assert_outputs_close(layer, module, rng):
    x = _input(layer, rng)
    ours, theirs = _fastrnn_outputs(layer, x), _torch_outputs(module, x)
    assert len(ours) == len(theirs)
    tolerance = 1e-12 if layer.dtype == np.float64 else 1e-5
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert relative_error(a, b) <= tolerance


@pytest.mark.parametrize("name", sorted(LAYERS) + sorted(OTHERS))
def test_to_torch_and_back(name):
    layer = {**LAYERS, **OTHERS}[name]()
    module = to_torch(layer)
    assert type(module).__name__ == type(layer).__name__
    _assert_same_weights(layer, module)
    _assert_outputs_close(layer, module, np.random.default_rng(0))
    back = from_torch(module)
    assert type(back) is type(layer)
    assert saving.describe_model(back) == saving.describe_model(layer)
    assert np.array_equal(back.flat_params, layer.flat_params)
    assert not np.shares_memory(back.flat_params, layer.flat_params)


@pytest.mark.parametrize("make", [
    lambda: torch.nn.LSTM(4, 6, num_layers=2, proj_size=3, bidirectional=True,
                          batch_first=True, dropout=0.1, dtype=torch.float64),
    lambda: torch.nn.GRU(4, 5, bias=False, dtype=torch.float64),
    lambda: torch.nn.RNN(4, 5, nonlinearity="relu", num_layers=2, dtype=torch.float64),
    lambda: torch.nn.LSTMCell(4, 5, dtype=torch.float64),
    lambda: torch.nn.Linear(4, 3),
    lambda: torch.nn.Embedding(10, 4, sparse=True, dtype=torch.float64),
], ids=["lstm", "gru", "rnn", "lstm-cell", "linear-float32", "embedding"])
def test_from_torch_and_back(make):
    torch.manual_seed(0)
    module = make()
    layer = from_torch(module, device="cpu")
    _assert_same_weights(layer, module)
    _assert_outputs_close(layer, module, np.random.default_rng(1))
    again = to_torch(layer)
    for key, value in module.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


@pytest.mark.parametrize("layer, message", [
    (lambda: fr.LSTM(3, 4, peephole=True), r"LSTM\(peephole=True\) has no PyTorch equivalent: "
                                           "torch.nn.LSTM has no peephole weights"),
    (lambda: fr.LSTM(3, 4, coupled=True), r"LSTM\(coupled=True\) has no PyTorch equivalent"),
    (lambda: fr.LSTMCell(3, 4, peephole=True), r"LSTMCell\(peephole=True\) has no PyTorch"),
    (lambda: fr.GRU(3, 4, reset_after=False), r"GRU\(reset_after=False\) has no PyTorch "
                                              "equivalent: torch.nn.GRU applies the reset gate "
                                              "after the recurrent product only"),
    (lambda: fr.GRUCell(3, 4, reset_after=False), r"GRUCell\(reset_after=False\)"),
])
def test_to_torch_refuses_fastrnn_only_variants(layer, message):
    with pytest.raises(ValueError, match=message):
        to_torch(layer())


def test_to_torch_refuses_other_objects():
    model = fr.Sequential([fr.LSTM(2, 3), fr.Linear(3, 1)])
    with pytest.raises(TypeError, match=r"got Sequential \(convert its layers one by one"):
        to_torch(model)
    with pytest.raises(TypeError, match="model must be a fastrnn RNN.*got Dropout"):
        to_torch(fr.Dropout(0.1))


@pytest.mark.parametrize("module, error, message", [
    (lambda: torch.nn.Conv1d(2, 3, 1), TypeError,
     "module must be a torch.nn RNN, LSTM.*got Conv1d"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 2)), TypeError, "got Sequential"),
    (lambda: torch.nn.LSTM(2, 3, dtype=torch.bfloat16), TypeError,
     r"module must have float32 or float64 parameters, got \['bfloat16'\]"),
    (lambda: torch.nn.Linear(2, 3, dtype=torch.float16), TypeError, r"got \['float16'\]"),
    (lambda: torch.nn.Embedding(5, 2, padding_idx=0), ValueError,
     r"Embedding\(padding_idx=0\) has no fastrnn equivalent"),
    (lambda: torch.nn.Embedding(5, 2, max_norm=1.0), ValueError, r"Embedding\(max_norm=1.0\)"),
    (lambda: torch.nn.Embedding(5, 2, scale_grad_by_freq=True), ValueError,
     r"Embedding\(scale_grad_by_freq=True\)"),
])
def test_from_torch_refuses_what_fastrnn_lacks(module, error, message):
    with pytest.raises(error, match=message):
        from_torch(module())


def test_from_torch_refuses_subclasses_and_bad_devices():
    class Custom(torch.nn.LSTM):
        pass

    with pytest.raises(TypeError, match="got Custom"):
        from_torch(Custom(2, 3))
    with pytest.raises(ValueError, match="device must be one of 'auto', 'cpu', 'cuda', got 'gpu'"):
        from_torch(torch.nn.GRU(2, 3), device="gpu")


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_interop_imports_torch_only_when_called():
    result = _run("import sys, fastrnn.interop; print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_torch_the_error_says_how_to_install():
    result = _run("import sys; sys.modules['torch'] = None\n"
                  "import fastrnn as fr\nfrom fastrnn.interop import to_torch\n"
                  "try:\n    to_torch(fr.Linear(2, 1))\n"
                  "except ImportError as error:\n    print(error)")
    assert result.returncode == 0, result.stderr
    assert "pip install torch" in result.stdout

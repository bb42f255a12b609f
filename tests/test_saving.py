"""fr.save / fr.load: every layer rebuilt bit for bit, every unreadable file refused."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import io, saving

F64 = np.float64


def _models():
    return {
        "rnn-relu-bidirectional-batch-first": lambda: fr.RNN(
            3, 5, 2, nonlinearity="relu", bidirectional=True, batch_first=True, dtype=F64, seed=1),
        "lstm-projected-dropout": lambda: fr.LSTM(3, 6, 2, proj_size=2, dropout=0.25, seed=2),
        "lstm-peephole-coupled-no-bias": lambda: fr.LSTM(
            3, 4, peephole=True, coupled=True, bias=False, dtype=F64, seed=3),
        "gru-reset-before-bidirectional": lambda: fr.GRU(
            3, 4, reset_after=False, bidirectional=True, seed=4),
        "rnn-cell": lambda: fr.RNNCell(3, 4, nonlinearity="relu", bias=False, seed=5),
        "lstm-cell-peephole": lambda: fr.LSTMCell(3, 4, peephole=True, dtype=F64, seed=6),
        "gru-cell-reset-before": lambda: fr.GRUCell(3, 4, reset_after=False, seed=7),
        "linear-no-bias": lambda: fr.Linear(3, 2, bias=False, dtype=F64, seed=8),
        "embedding": lambda: fr.Embedding(7, 3, seed=9),
        "dropout": lambda: fr.Dropout(0.3),
        "sequential": lambda: fr.Sequential([
            fr.Embedding(7, 3, dtype=F64, seed=10), fr.LSTM(3, 5, peephole=True, dtype=F64,
                                                            seed=11),
            fr.Dropout(0.2), fr.GRU(5, 4, bidirectional=True, dtype=F64, seed=12),
            fr.Linear(8, 7, dtype=F64, seed=13)]),
    }


MODELS = _models()


def _input(model, rng):
    """An input the model reads, in its dtype (token ids for an Embedding first layer)."""
    first = model.layers[0] if isinstance(model, fr.Sequential) else model
    if isinstance(first, fr.Embedding):
        return rng.integers(0, first.num_embeddings, size=(6, 2))
    if isinstance(first, fr.Dropout):
        return rng.normal(size=(6, 2, 3))
    dtype = first.dtype
    size = first.in_features if isinstance(first, fr.Linear) else first.input_size
    shape = (2, size) if type(first).__name__.endswith("Cell") else (6, 2, size)
    return rng.normal(size=shape).astype(dtype)


def _outputs(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) and not type(model).__name__.endswith("Cell") else out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_is_bitwise(tmp_path, name):
    model = MODELS[name]()
    for value in model.params.values():  # not the seed's values: the file's must win
        value += 0.125
    path = tmp_path / "model.npz"
    fr.save(path, model)
    loaded = fr.load(path)
    assert type(loaded) is type(model)
    assert saving.describe_model(loaded) == saving.describe_model(model)
    assert sorted(loaded.params) == sorted(model.params)
    for key, value in model.params.items():
        assert loaded.params[key].dtype == value.dtype
        assert np.array_equal(loaded.params[key], value), key
    x = _input(model, np.random.default_rng(0))
    expected, got = _outputs(model, x), _outputs(loaded, x)
    for a, b in zip(expected if isinstance(expected, tuple) else (expected,),
                    got if isinstance(got, tuple) else (got,)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_metadata_records_classes_and_arguments(tmp_path):
    path = tmp_path / "model.npz"
    fr.save(path, fr.Sequential([fr.GRU(2, 3, reset_after=False, seed=0),
                                 fr.Linear(3, 1, seed=0)]))
    arrays, metadata = io.load_arrays(path, "model")
    assert metadata["model_version"] == saving.MODEL_VERSION
    assert metadata["fastrnn_version"] == fr.__version__
    assert [layer["class"] for layer in metadata["model"]["layers"]] == ["GRU", "Linear"]
    assert metadata["model"]["layers"][0]["args"]["reset_after"] is False
    assert sorted(arrays) == ["0.bias_hh_l0", "0.bias_ih_l0", "0.weight_hh_l0", "0.weight_ih_l0",
                              "1.bias", "1.weight"]


def test_load_places_the_model_on_the_device_asked(tmp_path):
    path = tmp_path / "model.npz"
    fr.save(path, fr.LSTM(2, 3, seed=0))
    assert fr.load(path, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        fr.load(path, device="tpu")


def test_save_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match="model must be a fastrnn RNN.*got dict"):
        fr.save(tmp_path / "x.npz", {"weight": np.zeros(3)})

    class MyLSTM(fr.LSTM):
        pass

    with pytest.raises(TypeError, match="got MyLSTM"):
        fr.save(tmp_path / "x.npz", MyLSTM(2, 3))


# ------------------------------------------------------------- refused files
def _write(path, arrays, model, **extra):
    metadata = {"model": model, "model_version": saving.MODEL_VERSION}
    metadata.update(extra)
    io.save_arrays(path, arrays, metadata, "model")


def _linear_file(tmp_path, **changes):
    layer = fr.Linear(3, 2, dtype=F64, seed=0)
    arrays = layer.state_dict()
    arrays.update(changes.pop("arrays", {}))
    for name in changes.pop("drop", ()):
        del arrays[name]
    description = saving.describe_model(layer)
    description.update(changes.pop("description", {}))
    path = tmp_path / "model.npz"
    _write(path, arrays, description, **changes)
    return path


def test_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        fr.load(tmp_path / "nothing.npz")


def test_refuses_files_that_are_not_fastrnn_files(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a fastrnn file"):
        fr.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, weight=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="is not a fastrnn file: it has no __metadata__.json"):
        fr.load(plain)


def test_refuses_another_kind_of_fastrnn_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    io.save_arrays(path, {"params": np.zeros(3)}, {}, "checkpoint")
    with pytest.raises(ValueError, match="holds a 'checkpoint', expected a 'model'"):
        fr.load(path)


def test_refuses_a_newer_file_format(tmp_path):
    path = tmp_path / "model.npz"
    header = {"format": "fastrnn", "version": io.VERSION + 1, "kind": "model"}
    encoded = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **{"__metadata__.json": encoded})
    with pytest.raises(ValueError, match=f"format version {io.VERSION + 1}.*upgrade fastrnn"):
        fr.load(path)


@pytest.mark.parametrize("version", [saving.MODEL_VERSION + 1, None, "1"])
def test_refuses_a_newer_or_missing_model_version(tmp_path, version):
    path = _linear_file(tmp_path, model_version=version)
    with pytest.raises(ValueError, match=f"model description version {version!r}.*upgrade"):
        fr.load(path)


def test_refuses_an_unknown_class(tmp_path):
    path = _linear_file(tmp_path, description={"class": "Transformer"})
    with pytest.raises(ValueError, match="model is of unknown class 'Transformer'; this fastrnn"):
        fr.load(path)


def test_refuses_an_unknown_class_inside_a_sequential(tmp_path):
    path = tmp_path / "model.npz"
    _write(path, {}, {"class": "Sequential", "layers": [{"class": "Conv1d", "args": {}}]})
    with pytest.raises(ValueError, match=r"model.layers\[0\] is of unknown class 'Conv1d'"):
        fr.load(path)


@pytest.mark.parametrize("description, message", [
    ("Linear", "model must be described by a dict with a 'class' name"),
    ({"class": "Linear"}, r"model \(Linear\) must have a dict of constructor arguments"),
    ({"class": "Sequential", "layers": []}, r"model \(Sequential\) must list its layers"),
    ({"class": "Linear", "args": {"in_features": 3, "out_features": -2}},
     "cannot rebuild model as Linear.*out_features must be an int >= 1, got -2"),
    ({"class": "LSTM", "args": {"input_size": 3, "hidden_size": 4, "window": 2}},
     "cannot rebuild model as LSTM.*unexpected keyword argument 'window'"),
    ({"class": "Sequential", "layers": [
        {"class": "LSTM", "args": {"input_size": 3, "hidden_size": 4, "dtype": "float64"}},
        {"class": "Linear", "args": {"in_features": 4, "out_features": 1,
                                     "dtype": "float32"}}]},
     r"cannot rebuild model as Sequential\(layers\): layers must share one dtype"),
])
def test_refuses_a_malformed_description(tmp_path, description, message):
    path = tmp_path / "model.npz"
    _write(path, {}, description)
    with pytest.raises(ValueError, match=message):
        fr.load(path)


def test_refuses_missing_arrays(tmp_path):
    path = _linear_file(tmp_path, drop=["bias"])
    with pytest.raises(ValueError, match=r"missing arrays \['bias'\], unexpected arrays \[\]"):
        fr.load(path)


def test_refuses_unexpected_arrays(tmp_path):
    path = _linear_file(tmp_path, arrays={"scale": np.ones(2)})
    with pytest.raises(ValueError, match=r"missing arrays \[\], unexpected arrays \['scale'\]"):
        fr.load(path)


@pytest.mark.parametrize("array, what", [
    (np.zeros((3, 2)), "float64 and shape \\(3, 2\\)"),
    (np.zeros((2, 3), np.float32), "float32 and shape \\(2, 3\\)"),
])
def test_refuses_arrays_of_the_wrong_shape_or_dtype(tmp_path, array, what):
    path = _linear_file(tmp_path, arrays={"weight": array})
    with pytest.raises(ValueError, match=f"array 'weight' must have shape \\(2, 3\\) and dtype "
                                         f"float64, got an array of dtype {what}"):
        fr.load(path)


# ------------------------------------------------------------ killed writes
def test_a_process_killed_while_saving_leaves_the_previous_model(tmp_path):
    """A child process saves over a model file and is SIGKILLed halfway through
    writing the archive: the old file must still load, bit for bit."""
    path = tmp_path / "model.npz"
    old = fr.Sequential([fr.LSTM(3, 4, dtype=F64, seed=0), fr.Linear(4, 2, dtype=F64, seed=1)])
    fr.save(path, old)
    child = textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        import fastrnn as fr
        from fastrnn import io

        def half_then_killed(handle, **arrays):
            handle.write(b"PK\\x03\\x04" + bytes(1000))   # the start of a zip, then death
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        io.np.savez = half_then_killed
        fr.save({str(path)!r}, fr.LSTM(3, 9, seed=5))
        sys.exit("not killed")
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, PYTHONPATH=str(pathlib.Path(fr.__file__).parents[1])))
    assert result.returncode == -signal.SIGKILL, result.stderr
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[0] == "model.npz" and len(leftovers) == 2  # + the dead temporary file
    assert leftovers[1].startswith("model.npz.") and leftovers[1].endswith(".tmp")
    loaded = fr.load(path)
    assert saving.describe_model(loaded) == saving.describe_model(old)
    assert np.array_equal(loaded.flat_params, old.flat_params)

"""The guarantees users rely on: determinism, thread safety, IEEE propagation.

* The same inputs and seed give bitwise-identical outputs and gradients on
  repeated runs and with any number of numba and BLAS threads (1 and 2 here),
  on every path a scan can take: serial, split by sequences, split by units.
* Layers can run inference from several Python threads at once.
* Non-finite inputs propagate as in IEEE arithmetic, sequence by sequence,
  and never crash.
"""

import threading

import numba
import numpy as np
import pytest

import fastrnn as fr
from fastrnn.kernels.cpu import _threads, lstm

# (cell, options, input size, hidden size, batch): shapes chosen to take each path
# of the CPU scans with the library's default switches.
CASES = {
    "rnn-serial": (fr.RNN, {}, 5, 16, 3),
    "rnn-blocks": (fr.RNN, {}, 5, 256, 16),
    "gru-serial": (fr.GRU, {}, 5, 16, 3),
    "gru-blocks": (fr.GRU, {"reset_after": False}, 5, 160, 16),
    "lstm-serial": (fr.LSTM, {"peephole": True}, 5, 16, 3),
    "lstm-blocks": (fr.LSTM, {}, 5, 128, 16),
    "lstm-units": (fr.LSTM, {}, 5, 256, 32),
    "lstm-projection-blocks": (fr.LSTM, {"proj_size": 64}, 5, 256, 32),
}


def _path(name):
    return name.split("-")[-1]


def _expected_mode(layer, batch):
    """The scan mode the library picks for this layer (``None`` for non-LSTM cells)."""
    if isinstance(layer, fr.LSTM):
        return lstm._scan_mode(layer.spec, batch, layer.dtype)
    gates = layer.spec.num_gates * layer.hidden_size
    blocks = _threads.batch_blocks(batch * gates * layer.hidden_size, batch)
    return "blocks" if blocks > 1 else "serial"


def _build(name, dtype=np.float32):
    cls, options, inputs, hidden, batch = CASES[name]
    layer = cls(inputs, hidden, bidirectional=True, dtype=dtype, seed=7, **options)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, batch, inputs)).astype(dtype)
    lengths = rng.integers(1, 4, batch)
    dy = rng.standard_normal((3, batch, 2 * layer.spec.output_size)).astype(dtype)
    return layer, x, lengths, dy


def _train_step(layer, x, lengths, dy):
    y, h_n, tape = layer.forward(x, lengths=lengths)
    layer.zero_grad()
    dx, _ = layer.backward(tape, dy)
    states = h_n if isinstance(h_n, tuple) else (h_n,)
    return [y, *states, dx, layer.flat_grads.copy()]


def _with_threads(count, function):
    """Run ``function`` with numba and SciPy's BLAS limited to ``count`` threads."""
    library = _threads._kernel_blas()
    numba_before = numba.get_num_threads()
    blas_before = library.get_num_threads() if library is not None else None
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    if library is not None:
        library.set_num_threads(count)
    try:
        return function()
    finally:
        numba.set_num_threads(numba_before)
        if library is not None:
            library.set_num_threads(blas_before)


@pytest.mark.parametrize("name", list(CASES))
def test_results_do_not_depend_on_the_thread_count(name):
    layer, x, lengths, dy = _build(name)
    if _path(name) != "serial" and not _threads.parallel_layer_available():
        pytest.skip("numba has no thread-safe threading layer here: every scan is serial")
    assert _expected_mode(layer, x.shape[1]) == _path(name)
    one = _with_threads(1, lambda: _train_step(layer, x, lengths, dy))
    two = _with_threads(2, lambda: _train_step(layer, x, lengths, dy))
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["rnn-blocks", "gru-serial", "lstm-units"])
def test_repeated_runs_and_rebuilt_layers_are_bitwise_identical(name):
    first = _train_step(*_build(name))
    layer, x, lengths, dy = _build(name)
    again = [_train_step(layer, x, lengths, dy) for _ in range(2)]
    for run in again:
        for a, b in zip(first, run):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["gru-serial", "rnn-blocks", "lstm-units"])
def test_inference_from_several_python_threads(name):
    layer, _, _, _ = _build(name)
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((3, CASES[name][4], 5)).astype(np.float32) for _ in range(4)]
    expected = [layer(x)[0] for x in inputs]
    results = {}
    errors = []
    start = threading.Barrier(len(inputs))

    def work(index):
        try:
            start.wait()
            for _ in range(5):
                y, _ = layer(inputs[index])
                results.setdefault(index, []).append(y)
        except Exception as error:  # reported below, with the thread that raised it
            errors.append((index, error))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for index, outputs in results.items():
        assert len(outputs) == 5
        for y in outputs:
            np.testing.assert_array_equal(y, expected[index])


@pytest.mark.parametrize("name", ["rnn-serial", "gru-blocks", "lstm-units", "lstm-serial"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_propagates_within_its_own_sequence(name, bad):
    layer, x, _, dy = _build(name, np.float64)
    x = x.copy()
    x[1, 0, 2] = bad                         # step 1 of sequence 0
    with np.errstate(all="ignore"):
        y, _, tape = layer.forward(x)
        dx, _ = layer.backward(tape, dy)
    forward_dir = y[:, :, :layer.spec.output_size]
    assert np.all(np.isfinite(forward_dir[0, 0]))        # before the bad step: untouched
    if np.isnan(bad):
        assert np.all(np.isnan(forward_dir[1:, 0]))       # from it on: NaN
    assert np.all(np.isfinite(y[:, 1:])), "another sequence was contaminated"
    assert np.all(np.isfinite(dx[:, 1:])), "another sequence's gradient was contaminated"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_check_finite_raises_naming_the_argument_and_the_element(bad):
    layer, x, lengths, dy = _build("lstm-serial", np.float64)
    x_bad = x.copy()
    x_bad[2, 1, 3] = bad
    with pytest.raises(FloatingPointError, match=r"x must be finite \(check_finite=True\), "
                                                 r"got (nan|inf) at index \(2, 1, 3\)"):
        layer(x_bad, check_finite=True)
    with pytest.raises(FloatingPointError, match=r"x must be finite"):
        layer.forward(x_bad, check_finite=True)
    h0 = np.zeros((2, x.shape[1], layer.hidden_size))
    c0 = h0.copy()
    c0[1, 0, 0] = bad
    with pytest.raises(FloatingPointError, match=r"hx\[1\] must be finite .* index \(1, 0, 0\)"):
        layer(x, (h0, c0), check_finite=True)
    _, _, tape = layer.forward(x, lengths=lengths, check_finite=True)   # finite: no error
    dy_bad = dy.copy()
    dy_bad[0, 0, 0] = bad
    dy_bad[1, 0, 0] = bad
    with pytest.raises(FloatingPointError, match=r"dy must be finite .* \(2 non-finite values"):
        layer.backward(tape, dy_bad, check_finite=True)
    with pytest.raises(TypeError, match="check_finite must be True or False, got str .yes."):
        layer(x, check_finite="yes")


def test_check_finite_on_linear_and_sequential():
    linear = fr.Linear(3, 2, dtype=np.float64, seed=0)
    x = np.ones((4, 3))
    x[3, 2] = np.nan
    with pytest.raises(FloatingPointError, match=r"x must be finite .* index \(3, 2\)"):
        linear(x, check_finite=True)
    assert np.isnan(linear(x)[3]).all() and np.isfinite(linear(x)[:3]).all()
    _, tape = linear.forward(np.ones((4, 3)), check_finite=True)
    with pytest.raises(FloatingPointError, match="dy must be finite"):
        linear.backward(tape, np.full((4, 2), np.inf), check_finite=True)
    model = fr.Sequential([fr.GRU(3, 4, dtype=np.float64, seed=0),
                           fr.Linear(4, 2, dtype=np.float64, seed=1)])
    with pytest.raises(FloatingPointError, match=r"x must be finite"):
        model(x.reshape(2, 2, 3), check_finite=True)
    with pytest.raises(FloatingPointError, match=r"x must be finite"):
        model.forward(x.reshape(2, 2, 3), check_finite=True)
    y, _, tape = model.forward(np.ones((2, 2, 3)), check_finite=True)
    with pytest.raises(FloatingPointError, match=r"dy must be finite"):
        model.backward(tape, np.full(y.shape, np.nan), check_finite=True)
    # token ids are integers: always finite
    tokens = fr.Sequential([fr.LSTM(5, 4, dtype=np.float64, seed=0)])
    tokens(np.zeros((3, 2), np.int64), check_finite=True)


def test_check_finite_reads_gpu_arrays_on_the_host():
    from fastrnn import device
    from fastrnn._validation import check_finite
    if not device.cuda_status()[0]:
        pytest.skip(f"device='cuda' is not usable: {device.cuda_status()[1]}")
    from numba import cuda
    with pytest.raises(FloatingPointError, match=r"x must be finite .* index \(1,\)"):
        check_finite("x", cuda.to_device(np.array([1.0, np.nan, np.inf])))
    check_finite("x", cuda.to_device(np.array([1.0, 2.0])))

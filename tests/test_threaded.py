"""The numba-threaded LSTM scans (:mod:`fastrnn.kernels.cpu.lstm_threaded`).

Layers switch to them only for large steps, so these tests lower the switch to
zero and check that the threaded scans actually ran.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import fastrnn as fr
from fastrnn import config
from fastrnn.kernels.cpu import _common, _threads, lstm, lstm_threaded

from . import reference
from ._compare import assert_close, assert_inference_equals_training
from ._configs import (CELLS, build_layer, cell_options, layer_configs, random_call,
                       states_batched, to_time_major)
from .test_gradients import check_gradients

LSTM_CELLS = [cell for cell in CELLS if cell.startswith("lstm")]


@pytest.fixture
def threaded(monkeypatch):
    """Every LSTM without projection runs threaded; returns the count of threaded scans."""
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(config, "PARALLEL_MIN_BATCH", 1)
    if not _threads.use_parallel_scan(1, 1):
        pytest.skip("numba has a single thread or no thread-safe threading layer here")
    calls = {"forward": 0, "backward": 0}
    for name in calls:
        scan = getattr(lstm_threaded, f"{name}_scan")

        def counted(*args, _scan=scan, _name=name):
            calls[_name] += 1
            return _scan(*args)
        monkeypatch.setattr(lstm_threaded, f"{name}_scan", counted)
    return calls


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=layer_configs(cells=LSTM_CELLS))
def test_threaded_forward_matches_reference(threaded, config, dtype, tol):
    threaded["forward"] = 0
    layer = build_layer(config, dtype)
    x, hx, lengths, _, _ = random_call(layer, config, dtype)
    y, h_n = layer(x, hx, lengths)
    assert (threaded["forward"] > 0) == (config["proj_size"] == 0)
    hx = (tuple(np.zeros_like(s) for s in states_batched(layer, config, h_n)) if hx is None
          else states_batched(layer, config, hx))
    ref_y, ref_states = reference.layer_forward(
        "lstm", layer.state_dict(), to_time_major(layer, config, x), hx, lengths,
        layer.num_layers, layer.bidirectional, proj_size=config["proj_size"],
        **cell_options(config["cell"]))
    assert_close(to_time_major(layer, config, y), ref_y, tol, "y")
    for got, want in zip(states_batched(layer, config, h_n), ref_states):
        assert_close(got, want, tol, "h_n")


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=layer_configs(cells=LSTM_CELLS, max_layers=2))
def test_threaded_backward_matches_finite_differences(threaded, config):
    config = dict(config, proj_size=0)
    threaded["backward"] = 0
    layer = build_layer(config, np.float64)
    x, hx, lengths, dy, dh_n = random_call(layer, config, np.float64)
    check_gradients(layer, x, hx, lengths, dy, dh_n)
    assert threaded["backward"] > 0


def _run(layer, x, lengths, dy, dh_n):
    y, h_n, tape = layer.forward(x, lengths=lengths)
    layer.zero_grad()
    dx, dhx = layer.backward(tape, dy, dh_n)
    return [y, *h_n, dx, *dhx, layer.flat_grads.copy()]


def _odd_sized_call(dtype=np.float64):
    """Sizes that exercise every edge of the 4x4 kernel and several unit blocks."""
    rng = np.random.default_rng(3)
    steps, batch, hidden = 5, 7, 13
    x = rng.standard_normal((steps, batch, 3)).astype(dtype)
    dy = rng.standard_normal((steps, batch, 2 * hidden)).astype(dtype)
    dh_n = tuple(rng.standard_normal((2, batch, hidden)).astype(dtype) for _ in range(2))
    return x, [5, 1, 3, 5, 0, 4, 2], dy, dh_n


@pytest.mark.parametrize("variant", [{}, {"peephole": True}, {"coupled": True},
                                     {"peephole": True, "coupled": True}],
                         ids=["plain", "peephole", "coupled", "peephole-coupled"])
def test_threaded_equals_blas_path(threaded, monkeypatch, variant):
    layer = fr.LSTM(3, 13, bidirectional=True, dtype=np.float64, seed=5, **variant)
    x, lengths, dy, dh_n = _odd_sized_call()
    got = _run(layer, x, lengths, dy, dh_n)
    assert threaded["forward"] == 2 and threaded["backward"] == 2
    monkeypatch.setattr(config, "PARALLEL", False)
    want = _run(layer, x, lengths, dy, dh_n)
    assert threaded["forward"] == 2
    for a, b in zip(got, want):
        assert_close(a, b, 1e-13, "threaded vs BLAS path")


@pytest.mark.parametrize("in_scan, batch", [(True, 9), (True, 7), (False, 9)],
                         ids=["input-in-scan", "batch-too-small", "projected-first"])
def test_narrow_input_in_the_scan_equals_the_projection_first(threaded, monkeypatch, in_scan,
                                                               batch):
    """Narrow dense input: the input's product computed inside each step (the default
    up to ``config.LSTM_INPUT_IN_SCAN`` features, from 8 sequences) and the one-GEMM
    projection before the scan both match the BLAS path."""
    layer = fr.LSTM(3, 13, bidirectional=True, dtype=np.float64, seed=5)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, batch, 3))
    lengths = [5, 1, 3, 5, 0, 4, 2, 5, 3][:batch]
    dy = rng.standard_normal((5, batch, 26))
    dh_n = tuple(rng.standard_normal((2, batch, 13)) for _ in range(2))
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN", 64 if in_scan else 0)
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN_BYTES", 1 << 20 if in_scan else 0)
    features = []
    scan = lstm_threaded.forward_scan

    def recorded(*args):
        features.append(args[2].shape[2])   # x handed to the scan: empty when projected first
        return scan(*args)
    monkeypatch.setattr(lstm_threaded, "forward_scan", recorded)
    got = _run(layer, x, lengths, dy, dh_n)
    assert features == ([3, 3] if in_scan and batch >= 8 else [0, 0])
    monkeypatch.setattr(config, "PARALLEL", False)
    want = _run(layer, x, lengths, dy, dh_n)
    for a, b in zip(got, want):
        assert_close(a, b, 1e-13, "threaded vs BLAS path")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_results_do_not_depend_on_thread_count(threaded, monkeypatch, dtype):
    """Blocks of units per thread change with the thread count; no result bit does."""
    layer = fr.LSTM(3, 13, bidirectional=True, dtype=dtype, seed=5)
    call = _odd_sized_call(dtype)
    results = []
    for threads in (1, 2, 3, 4):
        monkeypatch.setattr(lstm, "unit_chunk", lambda h, n=threads: _threads.unit_chunk(h, n))
        results.append(_run(layer, *call))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_unit_chunk_is_a_multiple_of_four():
    assert [_threads.unit_chunk(h, 2) for h in (1, 4, 13, 256)] == [4, 4, 8, 128]
    assert _threads.unit_chunk(130, 3) == 44


def test_single_blas_thread_restores_the_thread_count():
    library = _threads._kernel_blas()
    if library is None:
        pytest.skip("SciPy's BLAS is not an OpenBLAS that threadpoolctl controls")
    before = library.get_num_threads()
    with _threads.single_blas_thread():
        with _threads.single_blas_thread():
            assert library.get_num_threads() == 1
        assert library.get_num_threads() == 1
    assert library.get_num_threads() == before


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
def test_a_read_out_after_a_threaded_scan_runs_on_the_same_threads(threaded, monkeypatch, dtype,
                                                                  tol):
    """Sequential(LSTM, Linear): after a threaded LSTM the Linear's GEMMs are split on
    numba's threads too, with the same results (up to the order of the sums)."""
    from fastrnn.kernels.cpu import dense
    split_calls = []
    real = dense.split_project
    monkeypatch.setattr(dense, "split_project",
                        lambda *args: (split_calls.append(1), real(*args))[1])
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 9, (6, 3))
    dy = rng.standard_normal((6, 3, 9)).astype(dtype)
    results = []
    for pool_followed in (True, False):
        model = fr.Sequential([fr.LSTM(9, 8, dtype=dtype, seed=0),
                               fr.Linear(8, 9, dtype=dtype, seed=1)])
        if not pool_followed:
            monkeypatch.setattr(dense, "_threaded", lambda rows, weight: False)
        logits, _, tape = model.forward(tokens)
        model.backward(tape, dy)
        results.append((logits, model.flat_grads.copy()))
    assert split_calls, "the read-out did not run on numba's threads"
    assert_close(results[0][0], results[1][0], tol, "logits")
    assert_close(results[0][1], results[1][1], tol, "gradients")


@pytest.mark.parametrize("options", [{}, dict(peephole=True), dict(coupled=True),
                                     dict(bidirectional=True, num_layers=2)])
def test_inference_equals_the_training_forward_bit_for_bit(threaded, options):
    """Inference runs its own loop, which stores no gates; the states and outputs
    are the training forward's to the bit."""
    layer = fr.LSTM(5, 12, seed=3, **options)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    lengths = [6, 2, 5]
    assert_inference_equals_training(layer, x, lengths)
    assert threaded["forward"] > 0


def test_wide_input_is_computed_in_the_scan_while_its_weights_are_small(monkeypatch):
    """Past ``config.LSTM_INPUT_IN_SCAN`` features the input's product still goes into
    the scan while ``W_ih`` has at most ``config.LSTM_INPUT_IN_SCAN_BYTES``; never
    for fewer than 8 sequences."""
    x = np.zeros((2, 8, 128), np.float32)
    weight_ih = np.zeros((4 * 16, 128), np.float32)
    assert _common.input_in_scan(x, weight_ih)
    assert not _common.input_in_scan(x[:, :7], weight_ih)
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN_BYTES", weight_ih.nbytes - 1)
    assert not _common.input_in_scan(x, weight_ih)
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN", 128)
    assert _common.input_in_scan(x, weight_ih)

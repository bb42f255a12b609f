"""Scans split by sequence across numba's threads (:func:`batch_blocks`).

The RNN, the GRU and the LSTM with a projection split their batch for large
steps (an LSTM without one splits its hidden units instead, see
test_threaded.py; here it is made to split its batch too), so these tests lower
the switch and check that the split scans actually ran.
"""

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import fastrnn as fr
from fastrnn import config
from fastrnn.kernels.cpu import _threads, gru, lstm, rnn

from . import reference
from ._compare import assert_close, assert_inference_equals_training
from ._configs import (build_layer, cell_options, layer_configs, random_call, states_batched,
                       to_time_major)
from .test_gradients import check_gradients

SPLIT_CELLS = ["rnn-tanh", "rnn-relu", "gru", "gru-reset-before", "lstm", "lstm-peephole-coupled"]
_MODULES = {"rnn": rnn, "gru": gru, "lstm": lstm}


@pytest.fixture
def split(monkeypatch):
    """Every RNN and GRU with two or more sequences splits; counts the split scans run."""
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(config, "SPLIT_MIN_ROWS", 1)
    monkeypatch.setattr(lstm, "use_parallel_scan", lambda work, batch: False)
    if _threads.batch_blocks(1, 2) == 1:
        pytest.skip("numba has a single thread or no thread-safe threading layer here")
    calls = {"forward": 0, "backward": 0}
    for module in _MODULES.values():
        for name in calls:
            scan = getattr(module, f"_{name}_blocks")

            def counted(*args, _scan=scan, _name=name):
                calls[_name] += 1
                return _scan(*args)
            monkeypatch.setattr(module, f"_{name}_blocks", counted)
    return calls


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=layer_configs(cells=SPLIT_CELLS))
def test_split_forward_matches_reference(split, config, dtype, tol):
    split["forward"] = 0
    layer = build_layer(config, dtype)
    x, hx, lengths, _, _ = random_call(layer, config, dtype)
    y, h_n = layer(x, hx, lengths)
    batched = not config["unbatched"] and config["batch"] >= 2
    assert (split["forward"] > 0) == batched
    hx = (tuple(np.zeros_like(s) for s in states_batched(layer, config, h_n)) if hx is None
          else states_batched(layer, config, hx))
    kind = config["cell"].split("-")[0]
    ref_y, ref_states = reference.layer_forward(
        kind, layer.state_dict(), to_time_major(layer, config, x), hx, lengths,
        layer.num_layers, layer.bidirectional, proj_size=config["proj_size"],
        **cell_options(config["cell"]))
    assert_close(to_time_major(layer, config, y), ref_y, tol, "y")
    for got, want in zip(states_batched(layer, config, h_n), ref_states):
        assert_close(got, want, tol, "h_n")


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=layer_configs(cells=SPLIT_CELLS, max_layers=2))
def test_split_backward_matches_finite_differences(split, config):
    config = dict(config, unbatched=False, batch=max(2, config["batch"]))
    split["backward"] = 0
    layer = build_layer(config, np.float64)
    x, hx, lengths, dy, dh_n = random_call(layer, config, np.float64)
    check_gradients(layer, x, hx, lengths, dy, dh_n)
    assert split["backward"] > 0


def _odd_sized_call(dtype=np.float64, hidden=13):
    rng = np.random.default_rng(3)
    steps, batch = 5, 7
    x = rng.standard_normal((steps, batch, 3)).astype(dtype)
    dy = rng.standard_normal((steps, batch, 2 * hidden)).astype(dtype)
    dh_n = rng.standard_normal((2, batch, hidden)).astype(dtype)
    return x, [5, 1, 3, 5, 0, 4, 2], dy, dh_n


def _run(layer, x, lengths, dy, dh_n, **guard):
    y, h_n, tape = layer.forward(x, lengths=lengths)
    layer.zero_grad()
    dx, dhx = layer.backward(tape, dy, dh_n, **guard)
    return [y, h_n, dx, dhx, layer.flat_grads.copy()]


CASES = [("rnn", fr.RNN, {}), ("rnn-relu", fr.RNN, {"nonlinearity": "relu"}),
         ("gru", fr.GRU, {}), ("gru-reset-before", fr.GRU, {"reset_after": False}),
         ("lstm", fr.LSTM, {}), ("lstm-projection", fr.LSTM, {"proj_size": 13}),
         ("lstm-peephole-coupled", fr.LSTM, {"peephole": True, "coupled": True})]


@pytest.mark.parametrize("cls, options", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_split_equals_serial_path(split, monkeypatch, cls, options):
    """Bidirectional, mixed lengths (one of them 0), token input and the error guard."""
    layer = cls(3, 13 + 4 * ("proj_size" in options), bidirectional=True, dtype=np.float64,
                seed=5, **options)
    x, lengths, dy, dh_n = _odd_sized_call()
    if cls is fr.LSTM:
        dh_n = (dh_n, np.random.default_rng(4).standard_normal((2, 7, layer.hidden_size)))
    norms_split, norms_serial = np.zeros((2, 5, 7)), np.zeros((2, 5, 7))
    tokens = np.random.default_rng(1).integers(0, 3, (5, 7))
    got = (_run(layer, x, lengths, dy, dh_n, error_clip=0.5, error_norms=norms_split)
           + _run(layer, tokens, lengths, dy, dh_n))
    assert split["forward"] == 4 and split["backward"] == 4
    monkeypatch.setattr(config, "SPLIT_MIN_ROWS", 10**9)
    want = (_run(layer, x, lengths, dy, dh_n, error_clip=0.5, error_norms=norms_serial)
            + _run(layer, tokens, lengths, dy, dh_n))
    assert split["forward"] == 4
    for a, b in zip(got + [norms_split], want + [norms_serial]):
        if a is not None:
            assert_close(a, b, 1e-13, "split vs serial path")
    assert norms_split.max() > 0.5  # the guard had something to clip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", [fr.RNN, fr.GRU, fr.LSTM], ids=["rnn", "gru", "lstm"])
def test_split_results_do_not_depend_on_thread_count(split, monkeypatch, dtype, cls):
    """The blocks are fixed; 1 to 4 threads share them out and no result bit changes."""
    for module in _MODULES.values():
        monkeypatch.setattr(module, "batch_blocks", lambda work, batch: 2)
    layer = cls(3, 13, bidirectional=True, dtype=dtype, seed=5)
    x, lengths, dy, dh_n = _odd_sized_call(dtype)
    if cls is fr.LSTM:
        dh_n = (dh_n, dh_n[::-1].copy())
    call = (x, lengths, dy, dh_n)
    results = []
    before = numba.get_num_threads()
    counts = range(1, min(4, numba.config.NUMBA_NUM_THREADS) + 1)
    try:
        for threads in counts:
            numba.set_num_threads(threads)
            results.append(_run(layer, *call))
    finally:
        numba.set_num_threads(before)
    assert split["forward"] == 2 * len(counts)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls, options", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
@pytest.mark.parametrize("blocks", [1, 2], ids=["serial", "split"])
def test_input_in_the_scan_equals_the_projection_first(split, monkeypatch, cls, options, blocks):
    """A dense input of at least 8 sequences with a small ``W_ih``: its product computed
    in each step (the joined ``[1, x_t, h]`` rows; the GRU's candidate takes its
    input term from their leading columns) matches the input projected before the
    scan, with mixed lengths (one of them 0), on one block and on two."""
    for module in _MODULES.values():
        monkeypatch.setattr(module, "batch_blocks", lambda work, batch, n=blocks: n)
    module = _MODULES[cls.__name__.lower()]
    features = []
    run_scan = module.run_scan

    def recorded(blocks, scan_blocks, scan_rows, batch, *args):
        if scan_rows is module._forward_rows:
            features.append(args[1].shape[2])   # x handed to the scan: no columns when projected
        return run_scan(blocks, scan_blocks, scan_rows, batch, *args)
    monkeypatch.setattr(module, "run_scan", recorded)
    layer = cls(3, 13 + 4 * ("proj_size" in options), bidirectional=True, dtype=np.float64,
                seed=5, **options)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 9, 3))
    lengths = [5, 1, 3, 5, 0, 4, 2, 5, 3]
    dy = rng.standard_normal((5, 9, 26))          # 13 outputs a direction (a projection's too)
    dh_n = rng.standard_normal((2, 9, 13))
    if cls is fr.LSTM:
        dh_n = (dh_n, rng.standard_normal((2, 9, layer.hidden_size)))
    got = _run(layer, x, lengths, dy, dh_n)
    assert features == [3, 3]
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN", 0)
    monkeypatch.setattr(config, "LSTM_INPUT_IN_SCAN_BYTES", 0)
    want = _run(layer, x, lengths, dy, dh_n)
    assert features[2:] == [0, 0]
    for a, b in zip(got, want):
        assert_close(a, b, 1e-13, "input in the scan vs projected first")


def test_batch_blocks_switch(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 100)
    monkeypatch.setattr(config, "SPLIT_MIN_ROWS", 4)
    if _threads.batch_blocks(100, 8) == 1:
        pytest.skip("numba has a single thread or no thread-safe threading layer here")
    assert _threads.batch_blocks(100, 8) == 2
    assert _threads.batch_blocks(99, 8) == 1   # too little work a step
    assert _threads.batch_blocks(100, 7) == 1  # fewer than SPLIT_MIN_ROWS sequences a block
    monkeypatch.setattr(config, "PARALLEL", False)
    assert _threads.batch_blocks(100, 8) == 1


@pytest.mark.parametrize("options", [{}, dict(peephole=True, coupled=True), dict(proj_size=3)])
def test_lstm_inference_equals_the_training_forward_bit_for_bit(split, options):
    layer = fr.LSTM(5, 12, seed=3, **options)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4, 5)).astype(np.float32)
    lengths = [6, 2, 5, 1]
    assert_inference_equals_training(layer, x, lengths)
    assert split["forward"] > 0


@pytest.mark.parametrize("batch, blocks", [(7, 1), (7, 2), (1, 2), (5, 3), (64, 2)])
def test_block_sums_adds_the_row_of_every_nonempty_block_once(batch, blocks):
    """The backward scans leave each block's bias sums in the row of its first
    sequence; :func:`block_sums` adds exactly those rows, in block order."""
    from fastrnn.kernels.cpu._common import block_sums
    from fastrnn.kernels.cpu._gemm import batch_block
    sums = np.full((batch, 3), np.nan)           # rows no block owns are never read
    want = np.zeros(3)
    for part in range(blocks):
        b0, b1 = batch_block(part, blocks, batch)
        if b1 > b0:
            sums[b0] = [part + 1.0, 10.0 * (part + 1), 0.5]
            want += sums[b0]
    np.testing.assert_array_equal(block_sums(sums, blocks), want)

"""The persistent CUDA scans (:mod:`fastrnn.kernels.cuda.persistent`): one launch per
direction, against the CPU backend and against the per-step CUDA scans.

Runs in numba's CUDA simulator (see ``test_cuda.py``), with one batch row and
four threads a block by default, so that every launch spans several blocks and
every thread handles several elements. The CPU backend is verified against
NumPy references and PyTorch elsewhere; the per-step CUDA path by
``test_cuda.py``. In the simulator both CUDA paths sum in the same order, so
they must agree bit for bit.
"""

import inspect
import sys

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install "
                                         "'fastrnn[cuda]')")

import fastrnn as fr  # noqa: E402
from fastrnn import config, device  # noqa: E402

if not device.cuda_status()[0]:
    pytest.skip(f"device='cuda' is not usable: {device.cuda_status()[1]}",
                allow_module_level=True)

from fastrnn.kernels.cuda import _gemm, _jit, persistent  # noqa: E402

from ._compare import assert_close  # noqa: E402

STEPS, BATCH, FEATURES, HIDDEN = 3, 3, 5, 4
LENGTHS = [3, 1, 2]
TOL64, TOL32 = 1e-10, 1e-5
#: Persistent against per-step CUDA: the same sums in the same order, so the
#: same bits in the simulator; a GPU may contract them into FMAs differently.
TOL_PATHS = 0.0 if device.cuda_simulated() else TOL64

PERSISTENT_KERNELS = {f"{persistent.__name__}._{kind}_{way}" for kind in ("rnn", "gru", "lstm")
                      for way in ("forward", "backward", "backward_guarded")}


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Persistent scans on, one row and four threads a block; small per-step launches;
    under the simulator, a short GIL switch interval (see ``test_cuda.py``)."""
    monkeypatch.setattr(config, "CUDA_PERSISTENT", True)
    monkeypatch.setattr(config, "CUDA_PERSISTENT_MAX_BATCH", 32)
    monkeypatch.setattr(persistent, "ROWS", 1)
    monkeypatch.setattr(persistent, "THREADS", 4)
    monkeypatch.setattr(_jit, "BLOCK", 8)
    monkeypatch.setattr(_gemm, "TILE", 4)
    if device.cuda_simulated():
        saved = sys.getswitchinterval()
        sys.setswitchinterval(5e-5)
        yield
        sys.setswitchinterval(saved)
    else:
        yield


def _layers(cls, dtype, **options):
    cpu = cls(FEATURES, HIDDEN, dtype=dtype, seed=7, device="cpu", **options)
    gpu = cls(FEATURES, HIDDEN, dtype=dtype, seed=7, device="cuda", **options)
    return cpu, gpu


def _inputs(layer, dtype, tokens=False, seed=0):
    """``(x, hx, dy, dh_n)``: random, states and state gradients given."""
    rng = np.random.default_rng(seed)
    if tokens:
        x = rng.integers(0, FEATURES, (STEPS, BATCH))
    else:
        x = rng.standard_normal((STEPS, BATCH, FEATURES)).astype(dtype)
    shapes = layer._state_shapes(BATCH)
    states = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    dy = rng.standard_normal((STEPS, BATCH, layer.num_directions * layer.spec.output_size))
    pack = tuple if layer.spec.has_cell_state else (lambda parts: parts[0])
    return x, pack(states), dy.astype(dtype), pack(grads)


def _run(layer, inputs, **backward_options):
    """Everything a forward and backward produce, and the names of the kernels launched."""
    out, log = _run_logged(layer, inputs, **backward_options)
    return out, {name for name, _ in log}


def _run_logged(layer, inputs, **backward_options):
    """Everything a forward and backward produce, and the launch log."""
    x, hx, dy, dh_n = inputs
    _jit.launch_log = log = []
    try:
        layer.zero_grad()
        y, h_n, tape = layer.forward(x, hx, LENGTHS)
        dx, dhx = layer.backward(tape, dy, dh_n, **backward_options)
    finally:
        _jit.launch_log = None
    out = dict(y=y, h_n=h_n, dhx=dhx)
    if dx is not None:
        out["dx"] = dx
    out.update({f"grad {name}": grad.copy() for name, grad in layer.grads.items()})
    return out, log


def _per_step(layer, inputs, monkeypatch, **backward_options):
    """:func:`_run` with the persistent scans switched off."""
    with monkeypatch.context() as patch:
        patch.setattr(config, "CUDA_PERSISTENT", False)
        return _run(layer, inputs, **backward_options)


def _assert_all_close(actual, expected, tol):
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert_close(actual[name], value, tol, name)


def _persistent(names):
    return names & PERSISTENT_KERNELS


def _kind(layer):
    return layer.spec.kind


def _stage_flags(log):
    """``{kernel name: {stage arguments}}`` of the persistent launches in ``log``."""
    flags = {}
    for name, args in log:
        if name in PERSISTENT_KERNELS:
            parameters = list(inspect.signature(_jit.KERNELS[name][0]).parameters)
            flags.setdefault(name, set()).add(args[parameters.index("stage")])
    return flags


CASES = {
    "rnn-tanh-bidirectional": (fr.RNN, dict(bidirectional=True)),
    "rnn-relu-2-layers": (fr.RNN, dict(nonlinearity="relu", num_layers=2)),
    "gru-bidirectional": (fr.GRU, dict(bidirectional=True)),
    "gru-reset-before-2-layers": (fr.GRU, dict(reset_after=False, num_layers=2)),
    "lstm-bidirectional": (fr.LSTM, dict(bidirectional=True)),
    "lstm-coupled-peephole": (fr.LSTM, dict(coupled=True, peephole=True)),
    "lstm-projection-peephole-bidirectional": (fr.LSTM, dict(proj_size=3, peephole=True,
                                                             bidirectional=True)),
}


@pytest.mark.parametrize("case", CASES)
def test_float64_matches_the_cpu_and_the_per_step_path(case, monkeypatch):
    cls, options = CASES[case]
    cpu, gpu = _layers(cls, np.float64, **options)
    inputs = _inputs(cpu, np.float64)
    expected, _ = _run(cpu, inputs)
    actual, log = _run_logged(gpu, inputs)
    kind = _kind(gpu)
    # The weights fit SHARED_WEIGHTS: every launch stages them.
    assert _stage_flags(log) == {f"{persistent.__name__}._{kind}_forward": {True},
                                 f"{persistent.__name__}._{kind}_backward": {True}}
    _assert_all_close(actual, expected, TOL64)
    stepped, launched = _per_step(gpu, inputs, monkeypatch)
    assert not _persistent(launched)
    _assert_all_close(actual, stepped, TOL_PATHS)


@pytest.mark.parametrize("case", CASES)
def test_weights_in_global_memory_give_the_same_bits(case, monkeypatch):
    """Weights too large for SHARED_WEIGHTS are read from global memory at every step:
    equal to the CPU, and bit for bit to the staged run (the same products in the same
    order, from another copy of the weights)."""
    cls, options = CASES[case]
    cpu, gpu = _layers(cls, np.float64, **options)
    inputs = _inputs(cpu, np.float64, seed=5)
    staged, log = _run_logged(gpu, inputs)
    assert set().union(*_stage_flags(log).values()) == {True}
    monkeypatch.setattr(persistent, "SHARED_WEIGHTS", 1)
    unstaged, log = _run_logged(gpu, inputs)
    assert len(_stage_flags(log)) == 2
    assert set().union(*_stage_flags(log).values()) == {False}
    _assert_all_close(unstaged, staged, 0.0)
    expected, _ = _run(cpu, inputs)
    _assert_all_close(unstaged, expected, TOL64)


def test_float32_staged_and_global_give_the_same_bits(monkeypatch):
    cpu, gpu = _layers(fr.GRU, np.float32, reset_after=False)
    inputs = _inputs(cpu, np.float32, seed=6)
    staged, log = _run_logged(gpu, inputs)
    assert set().union(*_stage_flags(log).values()) == {True}
    monkeypatch.setattr(persistent, "SHARED_WEIGHTS", 1)
    unstaged, log = _run_logged(gpu, inputs)
    assert set().union(*_stage_flags(log).values()) == {False}
    _assert_all_close(unstaged, staged, 0.0)
    _assert_all_close(unstaged, _run(cpu, inputs)[0], TOL32)


@pytest.mark.parametrize("cls, options, size", [
    (fr.RNN, {}, HIDDEN * HIDDEN),
    (fr.GRU, dict(reset_after=False), 3 * HIDDEN * HIDDEN),
    (fr.LSTM, dict(proj_size=3), 4 * HIDDEN * 3 + 3 * HIDDEN),   # W_hh, then W_hr
])
def test_weights_are_staged_exactly_when_they_fit(cls, options, size, monkeypatch):
    """``size`` elements of packed recurrent weights: staged, forward and backward, when
    SHARED_WEIGHTS holds them, read from global memory when it is one short."""
    _, gpu = _layers(cls, np.float64, **options)
    inputs = _inputs(gpu, np.float64)
    kind = _kind(gpu)
    names = {f"{persistent.__name__}._{kind}_{way}" for way in ("forward", "backward")}
    monkeypatch.setattr(persistent, "SHARED_WEIGHTS", size)
    assert _stage_flags(_run_logged(gpu, inputs)[1]) == {name: {True} for name in names}
    monkeypatch.setattr(persistent, "SHARED_WEIGHTS", size - 1)
    assert _stage_flags(_run_logged(gpu, inputs)[1]) == {name: {False} for name in names}


def test_the_shared_budget():
    """The largest kernels (three state buffers and the weights) fill the 48 KiB of
    static shared memory a block may have in float64 (PTX-checked by test_cuda_ptx.py)."""
    assert (3 * persistent.SHARED_STATE + persistent.SHARED_WEIGHTS) * 8 <= 48 * 1024
    assert persistent._stages(np.zeros(persistent.SHARED_WEIGHTS))
    assert not persistent._stages(np.zeros(persistent.SHARED_WEIGHTS + 1))


@pytest.mark.parametrize("cls, options", [(fr.GRU, dict(reset_after=False)),
                                          (fr.LSTM, dict(proj_size=3))])
def test_token_input(cls, options):
    cpu, gpu = _layers(cls, np.float64, **options)
    inputs = _inputs(cpu, np.float64, tokens=True)
    expected, _ = _run(cpu, inputs)
    actual, launched = _run(gpu, inputs)
    assert len(_persistent(launched)) == 2
    _assert_all_close(actual, expected, TOL64)


@pytest.mark.parametrize("cls, options", [(fr.GRU, {}), (fr.LSTM, dict(peephole=True,
                                                                        proj_size=3))])
def test_float32_matches_the_cpu(cls, options):
    cpu, gpu = _layers(cls, np.float32, **options)
    inputs = _inputs(cpu, np.float32)
    expected, _ = _run(cpu, inputs)
    actual, launched = _run(gpu, inputs)
    assert len(_persistent(launched)) == 2
    _assert_all_close(actual, expected, TOL32)
    assert all(value.dtype == np.float32 for key, value in actual.items()
               if not isinstance(value, tuple))


@pytest.mark.parametrize("cls, options", [(fr.RNN, dict(nonlinearity="relu")),
                                          (fr.GRU, dict(reset_after=False, bidirectional=True)),
                                          (fr.LSTM, dict(proj_size=3, coupled=True))])
def test_inference_without_a_tape(cls, options):
    cpu, gpu = _layers(cls, np.float64, **options)
    x, hx, _, _ = _inputs(cpu, np.float64)
    _jit.launch_log = log = []
    try:
        y, h_n = gpu(x, hx, LENGTHS)
    finally:
        _jit.launch_log = None
    assert _persistent({name for name, _ in log}) == {
        f"{persistent.__name__}._{_kind(gpu)}_forward"}
    y_cpu, h_cpu = cpu(x, hx, LENGTHS)
    assert_close(y, y_cpu, TOL64, "y")
    assert_close(h_n, h_cpu, TOL64, "h_n")


@pytest.mark.parametrize("rows, threads", [(1, 1), (2, 3), (4, 64)])
def test_any_rows_and_threads_per_block(rows, threads, monkeypatch):
    """One row a block or all in one; one thread for everything, or more threads than
    elements: the same results."""
    monkeypatch.setattr(persistent, "ROWS", rows)
    monkeypatch.setattr(persistent, "THREADS", threads)
    cpu, gpu = _layers(fr.LSTM, np.float64, proj_size=3, bidirectional=True)
    inputs = _inputs(cpu, np.float64, seed=3)
    expected, _ = _run(cpu, inputs)
    actual, launched = _run(gpu, inputs)
    assert len(_persistent(launched)) == 2
    _assert_all_close(actual, expected, TOL64)


def test_rows_per_block_shrink_to_fit_shared_memory(monkeypatch):
    """When ROWS rows would overflow a shared buffer, a block takes fewer."""
    grids = []
    launch = _jit.Kernel.launch

    def record(self, grid, block, *args):
        grids.append((self.name, grid, args[-1]))
        launch(self, grid, block, *args)

    monkeypatch.setattr(_jit.Kernel, "launch", record)
    monkeypatch.setattr(persistent, "ROWS", 3)
    monkeypatch.setattr(persistent, "SHARED_STATE", 2 * HIDDEN)
    monkeypatch.setattr(persistent, "_SHARED_PAIR", 4 * HIDDEN)
    cpu, gpu = _layers(fr.RNN, np.float64)
    inputs = _inputs(cpu, np.float64, seed=4)
    expected, _ = _run(cpu, inputs)
    actual, _ = _run(gpu, inputs)
    _assert_all_close(actual, expected, TOL64)
    persistent_grids = [(grid, rows) for name, grid, rows in grids if "persistent" in name]
    assert persistent_grids == [(2, 2), (2, 2)]   # 3 rows: blocks of 2 and 1


def _launched_after_forward_and_backward(layer, dtype=np.float64, **backward_options):
    return _run(layer, _inputs(layer, dtype), **backward_options)[1]


def test_large_batches_take_the_per_step_path(monkeypatch):
    monkeypatch.setattr(config, "CUDA_PERSISTENT_MAX_BATCH", BATCH - 1)
    _, gpu = _layers(fr.GRU, np.float64)
    launched = _launched_after_forward_and_backward(gpu)
    assert not _persistent(launched)
    assert "fastrnn.kernels.cuda.gru._gates_step" in launched
    monkeypatch.setattr(config, "CUDA_PERSISTENT_MAX_BATCH", BATCH)
    assert len(_persistent(_launched_after_forward_and_backward(gpu))) == 2


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setattr(config, "CUDA_PERSISTENT", False)
    _, gpu = _layers(fr.RNN, np.float64)
    launched = _launched_after_forward_and_backward(gpu)
    assert not _persistent(launched)
    assert "fastrnn.kernels.cuda.rnn._forward_step" in launched


def test_states_wider_than_shared_memory_take_the_per_step_path(monkeypatch):
    monkeypatch.setattr(persistent, "SHARED_STATE", HIDDEN - 1)
    _, gpu = _layers(fr.LSTM, np.float64)
    launched = _launched_after_forward_and_backward(gpu)
    assert not _persistent(launched)
    assert "fastrnn.kernels.cuda.lstm._forward_step" in launched


GUARD_CASES = {
    "rnn": (fr.RNN, {}),
    "gru": (fr.GRU, {}),
    "gru-reset-before": (fr.GRU, dict(reset_after=False)),
    "lstm-coupled-peephole": (fr.LSTM, dict(coupled=True, peephole=True)),
    "lstm-projection-bidirectional": (fr.LSTM, dict(proj_size=3, bidirectional=True)),
}
#: Clips some rows of dL/dh_t and not others (checked by the tests).
ERROR_CLIP = 2.5
#: Every case with both clip and norms; clip alone and norms alone for two.
GUARD_RUNS = ([(case, "both") for case in GUARD_CASES]
              + [(case, mode) for case in ("gru-reset-before", "lstm-projection-bidirectional")
                 for mode in ("clip", "norms")])


def _guarded(layer, inputs, clip, record):
    """:func:`_run` with the error guard, and the recorded norms (or None)."""
    norms = None
    if record:
        norms = np.zeros((layer.num_layers * layer.num_directions, STEPS, BATCH))
    out, log = _run_logged(layer, inputs, error_clip=clip, error_norms=norms)
    return out, log, norms


@pytest.mark.parametrize("case, mode", GUARD_RUNS)
def test_the_error_guard_runs_persistent(case, mode, monkeypatch):
    """``error_clip`` and/or ``error_norms`` with mixed lengths: the guarded persistent
    backward, equal to the CPU and, bit for bit, to the per-step path; norms recorded
    at valid steps only."""
    cls, options = GUARD_CASES[case]
    clip = None if mode == "norms" else ERROR_CLIP
    record = mode != "clip"
    cpu, gpu = _layers(cls, np.float64, **options)
    inputs = _inputs(cpu, np.float64, seed=8)
    expected, _, norms_cpu = _guarded(cpu, inputs, clip, record)
    actual, log, norms_gpu = _guarded(gpu, inputs, clip, record)
    kind = _kind(gpu)
    assert _stage_flags(log).keys() == {f"{persistent.__name__}._{kind}_forward",
                                        f"{persistent.__name__}._{kind}_backward_guarded"}
    _assert_all_close(actual, expected, TOL64)
    with monkeypatch.context() as patch:
        patch.setattr(config, "CUDA_PERSISTENT", False)
        stepped, log, norms_stepped = _guarded(gpu, inputs, clip, record)
    assert not _persistent({name for name, _ in log})
    _assert_all_close(actual, stepped, TOL_PATHS)
    unguarded, _ = _run(cpu, inputs)
    if clip is not None:   # the clip changed the weight gradients
        assert not np.allclose(expected["grad weight_hh_l0"], unguarded["grad weight_hh_l0"])
    if record:
        assert_close(norms_gpu, norms_cpu, TOL64, "error_norms")
        assert_close(norms_gpu, norms_stepped, TOL_PATHS, "error_norms")
        valid = np.arange(STEPS)[:, None] < np.array(LENGTHS)[None, :]
        assert np.all(norms_gpu[:, ~valid] == 0) and np.all(norms_gpu[:, valid] > 0)
        # Some rows above the clip and some below (the norms are taken before clipping).
        assert (norms_gpu[:, valid] > ERROR_CLIP).any()
        assert (norms_gpu[:, valid] < ERROR_CLIP).any()
    else:
        assert np.allclose(actual["y"], unguarded["y"])   # forward untouched


@pytest.mark.parametrize("cls, options", [(fr.GRU, dict(reset_after=False)),
                                          (fr.LSTM, dict(proj_size=3, peephole=True))])
def test_the_error_guard_in_float32(cls, options):
    cpu, gpu = _layers(cls, np.float32, **options)
    inputs = _inputs(cpu, np.float32, seed=9)
    expected, _, norms_cpu = _guarded(cpu, inputs, ERROR_CLIP, True)
    actual, log, norms_gpu = _guarded(gpu, inputs, ERROR_CLIP, True)
    assert f"{persistent.__name__}._{_kind(gpu)}_backward_guarded" in _stage_flags(log)
    _assert_all_close(actual, expected, TOL32)
    assert_close(norms_gpu, norms_cpu, TOL32, "error_norms")


def test_the_error_guard_with_weights_in_global_memory(monkeypatch):
    cpu, gpu = _layers(fr.LSTM, np.float64, proj_size=3)
    inputs = _inputs(cpu, np.float64, seed=10)
    staged, _, norms_staged = _guarded(gpu, inputs, ERROR_CLIP, True)
    monkeypatch.setattr(persistent, "SHARED_WEIGHTS", 1)
    actual, log, norms = _guarded(gpu, inputs, ERROR_CLIP, True)
    assert set().union(*_stage_flags(log).values()) == {False}
    _assert_all_close(actual, staged, 0.0)
    assert_close(norms, norms_staged, 0.0, "error_norms")


def test_no_guard_runs_the_plain_kernel():
    """Without ``error_clip`` and ``error_norms``, the plain kernel (whose float32 build
    has no float64 arithmetic)."""
    _, gpu = _layers(fr.RNN, np.float64)
    launched = _run(gpu, _inputs(gpu, np.float64), error_clip=None, error_norms=None)[1]
    assert _persistent(launched) == {f"{persistent.__name__}._rnn_forward",
                                     f"{persistent.__name__}._rnn_backward"}


def test_enabled_conditions():
    assert persistent.forward_enabled(1, 4) and persistent.forward_enabled(32, 4, 1024)
    assert not persistent.forward_enabled(0, 4)
    assert not persistent.forward_enabled(33, 4)
    assert not persistent.forward_enabled(2, 4, persistent.SHARED_STATE + 1)
    assert persistent.backward_enabled(2, 4) and persistent.backward_enabled(32, 4, 1024)
    assert not persistent.backward_enabled(33, 4)
    assert not persistent.backward_enabled(2, 4, persistent.SHARED_STATE + 1)


def test_launches_use_the_declared_signatures():
    """Every persistent kernel is launched, in both float types, with the argument
    types it declares (those ``test_cuda_ptx.py`` compiles)."""
    import numba
    from numba.core import sigutils

    _jit.launch_log = log = []
    try:
        for dtype in (np.float32, np.float64):
            for cls, options in [(fr.RNN, {}), (fr.GRU, dict(reset_after=False)),
                                 (fr.LSTM, dict(proj_size=2))]:
                layer = cls(3, 3, dtype=dtype, device="cuda", **options)
                for guard in ({}, dict(error_clip=0.5, error_norms=np.zeros((1, 2, 1)))):
                    y, _, tape = layer.forward(np.ones((2, 1, 3), dtype))
                    layer.backward(tape, np.ones_like(y), **guard)
    finally:
        _jit.launch_log = None
    launched = {}
    for name, args in log:
        if name not in PERSISTENT_KERNELS:
            continue
        _, template, float_types = _jit.KERNELS[name]
        actual = tuple(numba.typeof(getattr(arg, "_ary", arg)) for arg in args)
        declared = [sigutils.normalize_signature(_jit.signature(template, f))[0]
                    for f in float_types]
        assert actual in declared, f"{name} launched with {actual}, declares {declared}"
        launched.setdefault(name, set()).add(declared.index(actual))
    assert launched == {name: {0, 1} for name in PERSISTENT_KERNELS}


"""The CUDA backend against the CPU backend, layer for layer.

Runs in numba's CUDA simulator (the root ``conftest.py`` turns it on unless
``FASTRNN_TEST_REAL_GPU=1``), on shapes small enough for it, with thread
blocks and GEMM tiles small enough that every launch spans several blocks and
every GEMM has ragged edge tiles. The CPU backend is itself verified against
float64 NumPy references and PyTorch (``test_reference.py``,
``test_torch_parity.py``), so agreement to rounding here carries that over.
"""

import subprocess
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

from fastrnn.kernels.cuda import _gemm, _jit  # noqa: E402

from ._compare import assert_close  # noqa: E402

STEPS, BATCH, FEATURES, HIDDEN = 3, 3, 5, 6
LENGTHS = [3, 1, 2]
#: float64: the backends differ only in summation order and in tanh/exp (the
#: CPU's own, within 3 ulp, against libdevice's); measured <= 7e-16 relative.
TOL64 = 1e-10
#: float32: the CPU's float32 tanh/sigmoid are a rational approximation (<= 4e-7
#: relative, :mod:`fastrnn.kernels.cpu.activations`). Measured <= 4e-7 relative
#: in the simulator (which evaluates libm calls in float64); a GPU computes in
#: float32 throughout, so allow ~100 float32 ulp.
TOL32 = 1e-5


@pytest.fixture(autouse=True, scope="module")
def small_launches():
    """Blocks of 8 threads and 4x4 GEMM tiles; the per-step scans (the persistent ones
    are ``test_cuda_persistent.py``'s); under the simulator, a short GIL switch
    interval (its scheduler polls its threads: 10x faster)."""
    saved = _jit.BLOCK, _gemm.TILE, sys.getswitchinterval(), config.CUDA_PERSISTENT
    _jit.BLOCK, _gemm.TILE, config.CUDA_PERSISTENT = 8, 4, False
    if device.cuda_simulated():
        sys.setswitchinterval(5e-5)
    yield
    _jit.BLOCK, _gemm.TILE = saved[:2]
    sys.setswitchinterval(saved[2])
    config.CUDA_PERSISTENT = saved[3]


def _layers(cls, dtype, **options):
    """The same layer (same seed, so the same parameters) on the CPU and on CUDA."""
    cpu = cls(FEATURES, HIDDEN, dtype=dtype, seed=7, device="cpu", **options)
    gpu = cls(FEATURES, HIDDEN, dtype=dtype, seed=7, device="cuda", **options)
    assert gpu.device == "cuda"
    assert np.array_equal(cpu.flat_params, gpu.flat_params)
    return cpu, gpu


def _inputs(layer, tokens, dtype, seed=0):
    """``(x, hx, dy, dh_n)`` for ``layer``: random, states and state gradients given."""
    rng = np.random.default_rng(seed)
    if tokens:
        x = rng.integers(0, FEATURES, (STEPS, BATCH))
    else:
        x = rng.standard_normal((STEPS, BATCH, FEATURES)).astype(dtype)
    shapes = layer._state_shapes(BATCH)
    states = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    width = layer.num_directions * layer.spec.output_size
    dy = rng.standard_normal((STEPS, BATCH, width)).astype(dtype)
    pack = tuple if layer.spec.has_cell_state else (lambda parts: parts[0])
    return x, pack(states), dy, pack(grads)


def _run(layer, x, hx, dy, dh_n, **backward_options):
    """Everything a forward and backward produce, as named arrays."""
    layer.zero_grad()
    y, h_n, tape = layer.forward(x, hx, LENGTHS)
    dx, dhx = layer.backward(tape, dy, dh_n, **backward_options)
    out = dict(y=y, h_n=h_n, dhx=dhx)
    if dx is not None:
        out["dx"] = dx
    out.update({f"grad {name}": grad.copy() for name, grad in layer.grads.items()})
    return out


def _compare(cls, options, dtype, tokens=False, **backward_options):
    cpu, gpu = _layers(cls, dtype, **options)
    x, hx, dy, dh_n = _inputs(cpu, tokens, dtype)
    expected = _run(cpu, x, hx, dy, dh_n, **backward_options)
    actual = _run(gpu, x, hx, dy, dh_n, **backward_options)
    assert actual.keys() == expected.keys()
    tol = TOL64 if dtype == np.float64 else TOL32
    for name, value in expected.items():
        assert_close(actual[name], value, tol, name)
        assert _dtypes(actual[name]) == _dtypes(value), name
    return cpu, gpu


def _dtypes(value):
    return [part.dtype for part in value] if isinstance(value, tuple) else [value.dtype]


CASES = {
    "rnn-tanh-bidirectional": (fr.RNN, dict(bidirectional=True)),
    "rnn-relu-2-layers-dropout": (fr.RNN, dict(nonlinearity="relu", num_layers=2,
                                               dropout=0.4)),
    "gru-bidirectional": (fr.GRU, dict(bidirectional=True)),
    "gru-reset-before-2-layers": (fr.GRU, dict(reset_after=False, num_layers=2)),
    "lstm-2-layers-bidirectional": (fr.LSTM, dict(num_layers=2, bidirectional=True)),
    "lstm-peephole": (fr.LSTM, dict(peephole=True)),
    "lstm-coupled": (fr.LSTM, dict(coupled=True, bidirectional=True)),
    "lstm-coupled-peephole": (fr.LSTM, dict(coupled=True, peephole=True)),
    "lstm-projection-bidirectional": (fr.LSTM, dict(proj_size=4, bidirectional=True)),
    "lstm-projection-peephole-2-layers": (fr.LSTM, dict(proj_size=4, peephole=True,
                                                        num_layers=2)),
    "gru-no-bias": (fr.GRU, dict(bias=False)),
}


@pytest.mark.parametrize("case", CASES)
def test_float64_matches_the_cpu_backend(case):
    cls, options = CASES[case]
    _compare(cls, options, np.float64)


TOKEN_CASES = {
    "rnn": (fr.RNN, {}),
    "gru-reset-before-bidirectional": (fr.GRU, dict(reset_after=False, bidirectional=True)),
    "lstm-2-layers-projection": (fr.LSTM, dict(num_layers=2, proj_size=4)),
}


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_token_input_matches_the_cpu_backend(case):
    cls, options = TOKEN_CASES[case]
    _compare(cls, options, np.float64, tokens=True)


FLOAT32_CASES = {
    "rnn-relu": (fr.RNN, dict(nonlinearity="relu", bidirectional=True)),
    "gru": (fr.GRU, dict(num_layers=2)),
    "lstm-peephole-projection": (fr.LSTM, dict(peephole=True, proj_size=4,
                                               bidirectional=True)),
    "lstm-coupled": (fr.LSTM, dict(coupled=True)),
}


@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_float32_matches_the_cpu_backend(case):
    cls, options = FLOAT32_CASES[case]
    _compare(cls, options, np.float32)


@pytest.mark.parametrize("cls, options", [(fr.GRU, {}), (fr.LSTM, dict(num_layers=2))])
def test_no_input_gradient_matches_the_cpu_backend(cls, options):
    cpu, gpu = _compare(cls, options, np.float64, input_grad=False)
    x, hx, dy, dh_n = _inputs(cpu, False, np.float64)
    assert "dx" not in _run(gpu, x, hx, dy, dh_n, input_grad=False)


@pytest.mark.parametrize("on_device", [False, True])
def test_nan_padding_does_not_reach_the_gradients(on_device):
    from numba import cuda
    cpu, gpu = _layers(fr.GRU, np.float64, bidirectional=True)
    x, hx, dy, dh_n = _inputs(cpu, False, np.float64)
    for b, length in enumerate(LENGTHS):
        x[length:, b] = 0.0
    expected = _run(cpu, x, hx, dy, dh_n)
    padded = x.copy()
    for b, length in enumerate(LENGTHS):
        padded[length:, b] = np.nan
    given = cuda.to_device(padded) if on_device else padded
    actual = _run(gpu, given, hx, dy, dh_n)
    for name, value in expected.items():
        assert_close(fr.to_numpy(actual[name]), value, TOL64, name)
    np.testing.assert_array_equal(fr.to_numpy(given), padded)   # the caller's, untouched


@pytest.mark.parametrize("cls, options", [(fr.RNN, {}), (fr.GRU, dict(reset_after=False)),
                                          (fr.LSTM, dict(proj_size=4))])
def test_error_clip_and_norms_match_the_cpu_backend(cls, options):
    rows = (2 if options.get("bidirectional") else 1, STEPS, BATCH)
    norms_cpu, norms_gpu = np.zeros(rows), np.zeros(rows)
    cpu, gpu = _layers(cls, np.float64, **options)
    x, hx, dy, dh_n = _inputs(cpu, False, np.float64)
    clip = 0.8
    expected = _run(cpu, x, hx, dy, dh_n, error_clip=clip, error_norms=norms_cpu)
    actual = _run(gpu, x, hx, dy, dh_n, error_clip=clip, error_norms=norms_gpu)
    assert (norms_cpu > clip).any(), "the test must clip somewhere"
    assert (norms_cpu[:, LENGTHS[1]:, 1] == 0).all(), "padding steps hold 0"
    assert_close(norms_gpu, norms_cpu, TOL64, "error_norms")
    for name, value in expected.items():
        assert_close(actual[name], value, TOL64, name)
    unclipped = _run(gpu, x, hx, dy, dh_n)
    assert not np.allclose(unclipped["grad weight_hh_l0"], actual["grad weight_hh_l0"])


@pytest.mark.parametrize("cls, options", [(fr.RNN, dict(bidirectional=True)),
                                          (fr.GRU, dict(reset_after=False, num_layers=2)),
                                          (fr.LSTM, dict(proj_size=4, peephole=True))])
def test_inference_without_a_tape_matches_the_cpu_backend(cls, options):
    cpu, gpu = _layers(cls, np.float64, **options)
    x, hx, _, _ = _inputs(cpu, False, np.float64)
    (y_cpu, h_cpu), (y_gpu, h_gpu) = cpu(x, hx, LENGTHS), gpu(x, hx, LENGTHS)
    assert_close(y_gpu, y_cpu, TOL64, "y")
    assert_close(h_gpu, h_cpu, TOL64, "h_n")


@pytest.mark.parametrize("cls", [fr.RNNCell, fr.GRUCell, fr.LSTMCell])
def test_cells_run_one_step_through_the_cuda_backend(cls):
    cpu = cls(FEATURES, HIDDEN, dtype=np.float64, seed=2, device="cpu")
    gpu = cls(FEATURES, HIDDEN, dtype=np.float64, seed=2, device="cuda")
    assert gpu.device == "cuda"
    x = np.random.default_rng(5).standard_normal((BATCH, FEATURES))
    results = []
    for cell in (cpu, gpu):
        cell.zero_grad()
        h, tape = cell.forward(x)
        dh = tuple(np.ones_like(part) for part in h) if isinstance(h, tuple) else np.ones_like(h)
        dx, _ = cell.backward(tape, dh)
        results.append((h, dx, cell.flat_grads.copy()))
    for name, actual, expected in zip(("h", "dx", "grads"), *results[::-1]):
        assert_close(actual, expected, TOL64, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_matches_the_cpu_backend(dtype):
    cpu = fr.Linear(7, 5, dtype=dtype, seed=1, device="cpu")
    gpu = fr.Linear(7, 5, dtype=dtype, seed=1, device="cuda")
    x = np.random.default_rng(2).standard_normal((3, 6, 7)).astype(dtype)
    dy = np.random.default_rng(3).standard_normal((3, 6, 5)).astype(dtype)
    tol = TOL64 if dtype == np.float64 else 1e-6
    results = []
    for layer in (cpu, gpu):
        y, tape = layer.forward(x)
        results.append((y, layer.backward(tape, dy), layer.grads["weight"].copy(),
                        layer.grads["bias"].copy()))
    for name, actual, expected in zip(("y", "dx", "grad weight", "grad bias"), *results[::-1]):
        assert_close(actual, expected, tol, name)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_gemm_edges_transposes_and_accumulation(trans_a, trans_b):
    from numba import cuda
    rng = np.random.default_rng(4)
    rows, depth, cols = 5, 9, 7   # none a multiple of the 4x4 tile: ragged edges everywhere
    a = rng.standard_normal((depth, rows) if trans_a else (rows, depth))
    b = rng.standard_normal((cols, depth) if trans_b else (depth, cols))
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    c = cuda.to_device(np.full((rows, cols), np.nan))
    _gemm.matmul(cuda.to_device(a), cuda.to_device(b), c, trans_a, trans_b)
    assert_close(c.copy_to_host(), expected, 1e-14, "c = op(a) @ op(b)")
    _gemm.matmul(cuda.to_device(a), cuda.to_device(b), c, trans_a, trans_b, accumulate=True)
    assert_close(c.copy_to_host(), 2 * expected, 1e-14, "c += op(a) @ op(b)")


def test_gemm_sums_in_the_same_order_whatever_the_tile(monkeypatch):
    """Each element is one thread's in-order sum over k: the same bits for any tile size."""
    from numba import cuda
    rng = np.random.default_rng(6)
    a = cuda.to_device(rng.standard_normal((6, 11)))
    b = cuda.to_device(rng.standard_normal((11, 5)))
    results = []
    for tile in (3, 4, 8):
        monkeypatch.setattr(_gemm, "TILE", tile)
        c = cuda.device_array((6, 5))
        _gemm.matmul(a, b, c)
        results.append(c.copy_to_host())
    assert all(np.array_equal(result, results[0]) for result in results)


def test_gemm_rejects_mismatched_shapes():
    from numba import cuda
    a, b, c = (cuda.to_device(np.zeros(shape)) for shape in ((2, 3), (4, 5), (2, 5)))
    with pytest.raises(ValueError, match=r"matmul: op\(a\) is 2x3, op\(b\) 4x5, c 2x5: shapes "
                                         r"do not match"):
        _gemm.matmul(a, b, c)
    wide = cuda.device_array((1, 65535 * 4 + 1))
    with pytest.raises(ValueError, match=r"matmul: c has 262141 columns, more than the 262140 "
                                         r"that 65535 blocks of 4 columns cover"):
        _gemm.matmul(cuda.to_device(np.zeros((1, 1))), cuda.to_device(np.zeros((1, 262141))),
                     wide)


def test_launches_use_the_declared_signatures():
    """Every launch's argument types are those its kernel declares, which are the
    ones ``test_cuda_ptx.py`` compiles to PTX."""
    import numba
    from numba.core import sigutils

    _jit.launch_log = log = []
    try:
        for dtype in (np.float32, np.float64):
            for cls, options, tokens in [(fr.GRU, dict(reset_after=False), False),
                                         (fr.GRU, {}, True), (fr.RNN, {}, False),
                                         (fr.LSTM, dict(peephole=True, proj_size=2), False)]:
                layer = cls(4, 3, dtype=dtype, device="cuda", **options)
                layer.zero_grad()
                x = np.arange(4) % 3 if tokens else np.ones((4, 4), dtype)
                y, _, tape = layer.forward(x)
                layer(x)
                layer.backward(tape, np.ones_like(y), error_clip=1.0,
                               error_norms=np.zeros((1, 4, 1)))
                layer = fr.Linear(3, 2, dtype=dtype, device="cuda")
                layer.backward(layer.forward(np.ones((2, 3), dtype))[1], np.ones((2, 2), dtype))
                layer = fr.Embedding(3, 2, dtype=dtype, device="cuda")
                layer.backward(layer.forward(np.arange(4) % 3)[1], np.ones((4, 2), dtype))
            # bidirectional (column copies), batch_first (transposes), dropout (masks),
            # then training: clipping and every optimizer kernel
            layer = fr.LSTM(3, 2, num_layers=2, bidirectional=True, batch_first=True,
                            dropout=0.5, dtype=dtype, device="cuda")
            y, _, tape = layer.forward(np.ones((1, 2, 3), dtype))
            layer.backward(tape, np.ones_like(y))
            y, _, tape = layer.forward(np.ones((2, 3, 3), dtype), lengths=[3, 1])  # padding
            layer.backward(tape, np.ones_like(y))
            fr.training.clip_grad_norm(layer, 1e-3)
            fr.training.clip_grad_norm(layer, 1e-3, norm_type=3.0)
            fr.training.clip_grad_value(layer, 1e-4)
            for optimizer in (fr.training.SGD(layer, lr=0.1, momentum=0.5),
                              fr.training.Adam(layer, amsgrad=True),
                              fr.training.RMSprop(layer, momentum=0.5, centered=True),
                              fr.training.Adadelta(layer), fr.training.Adagrad(layer)):
                optimizer.step()
                optimizer.zero_grad()
    finally:
        _jit.launch_log = None
    launched = set()
    for name, args in log:
        _, template, float_types = _jit.KERNELS[name]
        actual = tuple(numba.typeof(getattr(arg, "_ary", arg)) for arg in args)
        declared = [sigutils.normalize_signature(_jit.signature(template, f))[0]
                    for f in float_types]
        assert actual in declared, f"{name} launched with {actual}, declares {declared}"
        launched.add(name)
    tile = _gemm.TILE
    # (the persistent scans' kernels are checked by test_cuda_persistent.py)
    unlaunched = {name for name in _jit.KERNELS
                  if "gemm[" not in name and ".persistent." not in name} - launched
    assert not unlaunched, f"kernels these runs never launched: {sorted(unlaunched)}"
    assert {f"{_gemm.__name__}.gemm[tile={tile},{f}]" for f in _jit.FLOAT_TYPES} <= launched


def test_device_resolution_under_the_simulator():
    assert device.cuda_status()[0]
    assert device.resolve_device("cuda") == "cuda"
    assert device.resolve_device("auto") == "cpu"
    assert fr.LSTM(3, 4).device == "cpu"
    if device.cuda_simulated():
        assert "simulator" in device.cuda_status()[1]


def test_foreign_gpu_arrays_are_a_clear_error_for_cpu_layers():
    class GpuArray:   # what a CuPy array or torch CUDA tensor shows a layer
        dtype, shape = np.dtype(np.float64), (STEPS, BATCH, FEATURES)
        __cuda_array_interface__ = {}

    layer = fr.GRU(FEATURES, HIDDEN, dtype=np.float64, device="cpu")
    with pytest.raises(TypeError, match=r"x must be a numpy array of float64, got a GPU array "
                                        r"\(GpuArray\) of shape \(3, 3, 5\); this runs on the "
                                        r"host \(device='cpu'\): copy it with "
                                        r"fastrnn.to_numpy\(\), or use a layer built with "
                                        r"device='cuda'"):
        layer(GpuArray())


def test_missing_numba_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: None)
    device._probe_cuda.cache_clear()
    try:
        assert device.cuda_status() == (
            False, "numba-cuda is not installed (pip install 'fastrnn[cuda]')")
        with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not "
                                             r"usable: numba-cuda is not installed"):
            fr.GRU(3, 4, device="cuda")
    finally:
        monkeypatch.undo()
        device._probe_cuda.cache_clear()
    assert device.cuda_status()[0]


def test_importing_fastrnn_does_not_import_numba_cuda():
    code = ("import sys, numpy as np, fastrnn as fr; fr.LSTM(3, 4)(np.ones((2, 1, 3), "
            "np.float32)); print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', "
            "'numba_cuda'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout

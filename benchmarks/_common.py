"""Shapes, timing and runners shared by the comparison scripts and the asv suite."""

import importlib
import time

import numpy as np

import fastrnn as fr


def load_kernels_blas():
    """Load the BLAS the CPU kernels call (SciPy's), so that a thread limit set later
    (threadpoolctl, ``--threads``) reaches it too."""
    importlib.import_module("scipy.linalg.cython_blas")


def blas_description():
    """The BLAS libraries loaded in this process, their versions, kernels and threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"x{i.get('num_threads')} ({i.get('prefix')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")


SHAPES = {  # name: (T, B, I, H)
    "d2l": (35, 32, 28, 256),
    "small": (200, 1, 8, 32),
    "medium": (100, 64, 128, 256),
    "long": (2000, 16, 32, 128),
    "large": (100, 128, 512, 512),
}
CELLS = ("LSTM", "GRU", "RNN")


def _time_calls(function, times, calls, seconds):
    """Append to ``times`` the durations of at least ``calls`` calls of ``function``
    lasting at least ``seconds`` in all (at most ``10 * calls`` calls)."""
    start, count = time.perf_counter(), 0
    while count < calls or time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
        count += 1
        if count >= 10 * calls:
            break


def best_time(function, repeats, min_seconds=0.2):
    """Median of ``repeats`` timings, after one warm-up call (compilation)."""
    function()
    times = []
    _time_calls(function, times, repeats, min_seconds)
    return float(np.median(times))


def paired_times(first, second, repeats, rounds=5, min_seconds=0.2):
    """Medians of ``first``'s and ``second``'s timings, measured in alternating rounds.

    After one warm-up call each, ``rounds`` rounds each time a run of calls of one
    function, then of the other (which goes first alternates), every run at least
    ``repeats / rounds`` calls (at least 2) and ``min_seconds / rounds`` long. A
    slow phase of a shared machine then hits both sides instead of whichever was
    being timed, while neither function's calls sit between the other's (their
    thread pools' spinning after a call would disturb the next one).
    """
    first()
    second()
    per_round = max(2, -(-repeats // rounds))
    times = ([], [])
    for index in range(rounds):
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for side in order:
            _time_calls((first, second)[side], times[side], per_round, min_seconds / rounds)
    return float(np.median(times[0])), float(np.median(times[1]))


def require_device(device):
    """Skip a benchmark case (asv: ``NotImplementedError`` in ``setup``) whose device cannot
    be timed here: ``"cuda"`` without a real GPU (numba's simulator does not count)."""
    if device != "cuda":
        return
    from fastrnn.device import cuda_simulated, cuda_status
    usable, reason = cuda_status()
    if not usable:
        raise NotImplementedError(f"no usable CUDA GPU: {reason}")
    if cuda_simulated():
        raise NotImplementedError("numba's CUDA simulator is on: nothing to time")


def fastrnn_runs(cell, shape, dtype, device="cpu", input_grad=False):
    """``(layer, forward, train)``: one layer and callables running it on ``device``.

    ``train`` is a forward with a tape and a backward, with the input gradient
    only when ``input_grad`` (a first layer's input needs none; torch's
    :func:`torch_runs` computes it under the same flag).

    On ``"cuda"`` the input and output gradient are uploaded once, here, so that
    the callables time the kernels (GPU arrays in and out), and each callable
    waits for the GPU to finish (launches are asynchronous).
    """
    steps, batch, inputs, hidden = shape
    layer = getattr(fr, cell)(inputs, hidden, dtype=dtype, seed=0, device=device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    dy = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    synchronize = None
    if device == "cuda":
        from numba import cuda
        x, dy, synchronize = cuda.to_device(x), cuda.to_device(dy), cuda.synchronize

    def forward():
        layer(x)
        if synchronize:
            synchronize()

    def train():
        _, _, tape = layer.forward(x)
        layer.backward(tape, dy, input_grad=input_grad)
        if synchronize:
            synchronize()

    return layer, forward, train


def torch_runs(torch, layer, shape, input_grad=False):
    """torch's forward and training callables for the same layer, in the layer's dtype
    (the input gradient computed only when ``input_grad``: ``requires_grad``)."""
    steps, batch, inputs, hidden = shape
    dtype = layer.dtype
    module = getattr(torch.nn, type(layer).__name__)(inputs, hidden)
    if dtype == np.float64:
        module = module.double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((steps, batch, inputs)).astype(dtype))
    x.requires_grad_(input_grad)
    dy = torch.from_numpy(rng.standard_normal((steps, batch, hidden)).astype(dtype))

    def forward():
        with torch.no_grad():
            module(x)

    def train():
        module.zero_grad(set_to_none=True)
        x.grad = None
        y, _ = module(x)
        y.backward(dy)

    return forward, train

"""Shapes, timing and runners shared by the comparison scripts and the asv suite."""

import time

import numpy as np

import fastrnn as fr


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


def best_time(function, repeats, min_seconds=0.2):
    """Median of ``repeats`` timings, after one warm-up call (compilation)."""
    function()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
        if len(times) >= 10 * repeats:
            break
    return float(np.median(times))


def fastrnn_runs(cell, shape, dtype):
    steps, batch, inputs, hidden = shape
    layer = getattr(fr, cell)(inputs, hidden, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    dy = rng.standard_normal((steps, batch, hidden)).astype(dtype)

    def forward():
        layer(x)

    def train():
        _, _, tape = layer.forward(x)
        layer.backward(tape, dy)

    return layer, forward, train


def torch_runs(torch, layer, shape):
    """torch's forward and training callables for the same layer, in the layer's dtype."""
    steps, batch, inputs, hidden = shape
    dtype = layer.dtype
    module = getattr(torch.nn, type(layer).__name__)(inputs, hidden)
    if dtype == np.float64:
        module = module.double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((steps, batch, inputs)).astype(dtype))
    dy = torch.from_numpy(rng.standard_normal((steps, batch, hidden)).astype(dtype))

    def forward():
        with torch.no_grad():
            module(x)

    def train():
        module.zero_grad(set_to_none=True)
        y, _ = module(x)
        y.backward(dy)

    return forward, train

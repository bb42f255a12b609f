"""asv: one recurrent layer, forward and forward+backward, over cell x shape x dtype x device.

Compilation happens in ``setup`` (one warm-up call), never inside ``time_*``.
"""

import numpy as np

from ._common import CELLS, SHAPES, fastrnn_runs, paired_times, require_device, torch_runs

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")


class Layer:
    params = (list(CELLS), list(SHAPES), list(DTYPES), list(DEVICES))
    param_names = ("cell", "shape", "dtype", "device")
    timeout = 600

    def setup(self, cell, shape, dtype, device):
        require_device(device)
        self.layer, self.forward, self.train = fastrnn_runs(cell, SHAPES[shape],
                                                            np.dtype(dtype), device)
        self.train()   # compile (or load from the cache) outside the timings
        self.forward()

    def time_forward(self, cell, shape, dtype, device):
        self.forward()

    def time_forward_backward(self, cell, shape, dtype, device):
        self.train()

    def peakmem_forward_backward(self, cell, shape, dtype, device):
        # host memory only: on "cuda" this is the host side's peak, not the GPU's
        self.train()


class RatioVsTorch:
    """fastrnn time / torch time, float32, measured side by side (below 1: fastrnn faster)."""

    params = (list(CELLS), list(SHAPES))
    param_names = ("cell", "shape")
    timeout = 900
    repeats = 5

    def setup(self, cell, shape):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        self.layer, self.forward, self.train = fastrnn_runs(cell, SHAPES[shape], np.float32)
        self.torch_forward, self.torch_train = torch_runs(torch, self.layer, SHAPES[shape])

    def track_ratio_vs_torch_forward(self, cell, shape):
        ours, theirs = paired_times(self.forward, self.torch_forward, self.repeats)
        return ours / theirs

    def track_ratio_vs_torch_forward_backward(self, cell, shape):
        ours, theirs = paired_times(self.train, self.torch_train, self.repeats)
        return ours / theirs

    track_ratio_vs_torch_forward.unit = "ratio"
    track_ratio_vs_torch_forward_backward.unit = "ratio"


class GradientError:
    """Largest relative error of float32 gradients against the same layer in float64."""

    params = (list(CELLS),)
    param_names = ("cell",)

    def setup(self, cell):
        steps, batch, inputs, hidden = SHAPES["d2l"]
        import fastrnn as fr
        rng = np.random.default_rng(0)
        x = rng.standard_normal((steps, batch, inputs))
        dy = rng.standard_normal((steps, batch, hidden))
        self.grads = {}
        reference = getattr(fr, cell)(inputs, hidden, dtype=np.float64, seed=0)
        for dtype in (np.float32, np.float64):
            layer = getattr(fr, cell)(inputs, hidden, dtype=dtype, seed=0)
            layer.load_state_dict(reference.state_dict())
            _, _, tape = layer.forward(x.astype(dtype))
            layer.backward(tape, dy.astype(dtype))
            self.grads[np.dtype(dtype).name] = layer.flat_grads.astype(np.float64)

    def track_max_grad_error_vs_float64(self, cell):
        exact = self.grads["float64"]
        return float(np.abs(self.grads["float32"] - exact).max() / np.abs(exact).max())

    track_max_grad_error_vs_float64.unit = "relative error"

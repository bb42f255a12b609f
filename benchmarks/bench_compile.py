"""asv: seconds from ``import fastrnn`` to a finished first forward+backward of a cell.

Cold: numba's on-disk cache off (every kernel compiles). Warm: the cache is
filled first, so the first call only loads compiled kernels.

Two shapes, because they compile different kernels: ``tiny`` (T, B, I, H) =
(3, 2, 8, 16) runs the serial scans, ``d2l`` (35, 32, 28, 256) the numba-threaded
ones (:mod:`fastrnn.kernels.cpu._threads`) and the split weight-gradient products
that every layer of that size and larger uses.
"""

import os
import subprocess
import sys

SHAPES = {"tiny": (3, 2, 8, 16), "d2l": (35, 32, 28, 256)}

_PROGRAM = """
import time
start = time.perf_counter()
import numpy as np
import fastrnn as fr
steps, batch, features, hidden = {shape}
layer = fr.{cell}(features, hidden, seed=0)
y, _, tape = layer.forward(np.zeros((steps, batch, features), np.float32))
layer.backward(tape, y)
print(time.perf_counter() - start)
"""


def _first_call_seconds(cell, shape, cache):
    env = dict(os.environ, FASTRNN_CACHE="1" if cache else "0")
    program = _PROGRAM.format(cell=cell, shape=SHAPES[shape])
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                            text=True, check=True)
    return float(result.stdout.split()[-1])


class Compile:
    params = (["LSTM", "GRU", "RNN"], list(SHAPES), ["cold", "warm"])
    param_names = ("cell", "shape", "cache")
    timeout = 600

    def setup(self, cell, shape, cache):
        if cache == "warm":
            _first_call_seconds(cell, shape, cache=True)   # fill the cache

    def track_compile_seconds(self, cell, shape, cache):
        return _first_call_seconds(cell, shape, cache=cache == "warm")

    track_compile_seconds.unit = "seconds"

"""asv: seconds from ``import fastrnn`` to a finished first forward+backward of a cell.

Cold: numba's on-disk cache off (every kernel compiles). Warm: the cache is
filled first, so the first call only loads compiled kernels.
"""

import os
import subprocess
import sys

_PROGRAM = """
import time
start = time.perf_counter()
import numpy as np
import fastrnn as fr
layer = fr.{cell}(8, 16, seed=0)
y, _, tape = layer.forward(np.zeros((3, 2, 8), np.float32))
layer.backward(tape, y)
print(time.perf_counter() - start)
"""


def _first_call_seconds(cell, cache):
    env = dict(os.environ, FASTRNN_CACHE="1" if cache else "0")
    result = subprocess.run([sys.executable, "-c", _PROGRAM.format(cell=cell)], env=env,
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


class Compile:
    params = (["LSTM", "GRU", "RNN"], ["cold", "warm"])
    param_names = ("cell", "cache")
    timeout = 600

    def setup(self, cell, cache):
        if cache == "warm":
            _first_call_seconds(cell, cache=True)   # fill the cache

    def track_compile_seconds(self, cell, cache):
        return _first_call_seconds(cell, cache=cache == "warm")

    track_compile_seconds.unit = "seconds"

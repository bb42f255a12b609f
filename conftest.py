"""Repository-wide test setup: numba's CUDA simulator.

The CUDA backend's tests run in numba's CUDA simulator unless
``FASTRNN_TEST_REAL_GPU=1``, so that they run everywhere, GPU or not. The
simulator must be chosen before numba is first imported, hence here, at the
top of the first file pytest loads. It changes nothing for the CPU kernels
(``numba.njit``), and ``device="auto"`` never resolves to the simulator.
"""

import importlib.util
import os

if os.environ.get("FASTRNN_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# Without numba-cuda the CUDA backend cannot be imported, so the doctest
# collection of the package skips it (tests/test_cuda*.py skip themselves).
if importlib.util.find_spec("numba_cuda") is None:
    collect_ignore_glob = ["fastrnn/kernels/cuda/*"]

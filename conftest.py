"""Repository-wide test setup: numba's CUDA simulator, and optional dependencies.

The CUDA backend's tests run in numba's CUDA simulator unless
``FASTRNN_TEST_REAL_GPU=1``, so that they run everywhere, GPU or not. The
simulator must be chosen before numba is first imported, hence here, at the
top of the first file pytest loads. It changes nothing for the CPU kernels
(``numba.njit``), and ``device="auto"`` never resolves to the simulator.

Modules whose optional dependency is not installed are not collected for
doctests (their tests skip themselves).
"""

import importlib.util
import os

if os.environ.get("FASTRNN_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

collect_ignore = []
if importlib.util.find_spec("sklearn") is None:
    collect_ignore.append("fastrnn/sklearn.py")
# Without numba-cuda the CUDA backend cannot be imported.
if importlib.util.find_spec("numba_cuda") is None:
    collect_ignore_glob = ["fastrnn/kernels/cuda/*"]

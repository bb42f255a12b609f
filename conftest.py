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
import sys
import threading

import pytest

if os.environ.get("FASTRNN_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

collect_ignore = []
if importlib.util.find_spec("sklearn") is None:
    collect_ignore.append("fastrnn/sklearn.py")
# Without numba-cuda the CUDA backend cannot be imported.
if importlib.util.find_spec("numba_cuda") is None:
    collect_ignore_glob = ["fastrnn/kernels/cuda/*"]


_simulator_patched = False


@pytest.fixture(autouse=True)
def _lock_simulator_shared_arrays():
    """Make numba's CUDA simulator allocate shared arrays under a lock.

    The simulator gives a launch's threads one array per ``cuda.shared.array``
    call site, created by whichever thread gets there first, but checks and
    fills its table without a lock: two threads that both find it empty get
    different arrays, and their block no longer shares that memory. The tests
    shorten the GIL switch interval, which makes this likelier; it showed as a
    rare wrong row in a GEMM result. Patched once numba.cuda (the simulator) is
    imported, by the first CUDA test module; the replacement also finds the
    call site from the caller's frame instead of a full stack extraction.
    """
    global _simulator_patched
    if not _simulator_patched and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" \
            and "numba.cuda" in sys.modules:
        import numpy as np
        from numba.core import types
        from numba.cuda.simulator import kernelapi
        from numba.np import numpy_support

        original = kernelapi.FakeCUDAShared.array
        lock = threading.Lock()

        def array(self, shape, dtype, alignment=None):
            if shape == 0 or alignment is not None:   # dynamic shared memory; an error
                return original(self, shape, dtype, alignment)
            frame = sys._getframe(1)
            caller = (frame.f_code.co_filename, frame.f_lineno)
            with lock:
                found = self._allocations.get(caller)
                if found is None:
                    if isinstance(dtype, types.Type):
                        dtype = numpy_support.as_dtype(dtype)
                    found = self._allocations[caller] = np.empty(shape, dtype)
            return found

        kernelapi.FakeCUDAShared.array = array
        _simulator_patched = True
    yield

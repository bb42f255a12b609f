"""Device resolution: the one place that decides which backend runs a layer.

``"cpu"`` runs the numba CPU kernels; ``"cuda"`` the numba.cuda kernels of
:mod:`fastrnn.kernels.cuda` (NumPy in and out), on a GPU or in numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, for tests); asking for it without
either raises a clear error. ``"auto"`` resolves to ``"cpu"`` for now (see
:data:`AUTO_PICKS_CUDA`). Nothing here runs at import time: numba.cuda is
imported and the GPU probed on the first ``"cuda"`` resolution only.

:func:`to_numpy` brings any array, host or device, to the host;
:func:`is_device_array` tells them apart.
"""

import functools
import importlib
import importlib.util

import numpy as np

from ._validation import check_choice, describe, is_device_array

DEVICES = ("auto", "cpu", "cuda")
_BACKEND_MODULES = {"cpu": "fastrnn.kernels.cpu", "cuda": "fastrnn.kernels.cuda"}

#: Whether ``"auto"`` picks the CUDA backend when :func:`cuda_status` says it is
#: usable. Off until that backend has run on real GPUs: so far it is verified
#: against the CPU backend in numba's simulator and compiled to PTX only
#: (``docs/cuda.md``), and it copies inputs and weights to the device on every
#: call. Never on under the simulator, where it is ~1000x slower than the CPU.
AUTO_PICKS_CUDA = False


@functools.lru_cache(maxsize=None)
def _probe_cuda():
    """``(usable, simulated, reason)``, probed once per process (see :func:`cuda_status`)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False, False, "numba-cuda is not installed (pip install 'fastrnn[cuda]')"
    try:
        from numba import config, cuda
        gpu = cuda.is_available()
    except Exception as exc:  # a broken driver must not break the CPU path
        return False, False, f"numba.cuda failed to start: {exc}"
    if config.ENABLE_CUDASIM:
        return True, True, ("numba's CUDA simulator is enabled (NUMBA_ENABLE_CUDASIM=1): the "
                            "CUDA kernels run on the CPU, slowly; for testing")
    if not gpu:
        return False, False, "no CUDA GPU is visible to numba.cuda"
    return True, False, "a CUDA GPU is available"


def cuda_status():
    """``(usable, reason)``: whether ``device="cuda"`` can run, and why not.

    Probes once per process, on first call: numba-cuda installed, and a GPU
    visible to it or numba's CUDA simulator enabled (``NUMBA_ENABLE_CUDASIM=1``
    before numba is first imported), which runs the same kernels on the CPU.
    """
    usable, _, reason = _probe_cuda()
    return usable, reason


def cuda_simulated():
    """Whether ``device="cuda"`` runs in numba's CUDA simulator (see :func:`cuda_status`)."""
    return _probe_cuda()[1]


def resolve_device(device):
    """Turn ``"auto"``/``"cpu"``/``"cuda"`` into the device that will run.

    ``"auto"`` is ``"cpu"`` unless :data:`AUTO_PICKS_CUDA` is set, a usable
    GPU is present, and it is not the simulator.

    Raises
    ------
    ValueError
        For an unknown name, or ``"cuda"`` when no usable GPU is present.
    """
    check_choice("device", device, DEVICES)
    if device == "cpu" or (device == "auto" and not AUTO_PICKS_CUDA):
        return "cpu"
    usable, reason = cuda_status()
    if device == "auto":
        return "cuda" if usable and not cuda_simulated() else "cpu"
    if not usable:
        raise ValueError(f"device='cuda' was requested but CUDA is not usable: {reason}")
    return "cuda"


def get_backend(device):
    """The backend module for a resolved device (imported, so compiled, on first use)."""
    return importlib.import_module(_BACKEND_MODULES[device])


def to_numpy(array):
    """A NumPy array from a NumPy array (returned as it is) or a GPU array (copied).

    Parameters
    ----------
    array : numpy.ndarray or GPU array
        A GPU array is anything with ``__cuda_array_interface__`` (numba device
        arrays, CuPy arrays, PyTorch CUDA tensors) or a numba device array; it
        is copied to the host with numba.cuda.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(array, np.ndarray):
        return array
    if not is_device_array(array):
        raise TypeError(f"array must be a numpy array or a GPU array (with "
                        f"__cuda_array_interface__), got {describe(array)}")
    if not hasattr(array, "copy_to_host"):
        from numba import cuda
        array = cuda.as_cuda_array(array)
    return array.copy_to_host()

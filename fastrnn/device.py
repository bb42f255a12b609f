"""Device resolution: the one place that decides which backend runs a layer.

``"cpu"`` runs the numba CPU kernels; ``"cuda"`` the numba.cuda kernels (the
CUDA backend is not built yet, so asking for it raises a clear error);
``"auto"`` resolves to ``"cuda"`` when a usable GPU and the CUDA backend are
present and to ``"cpu"`` otherwise. Nothing here runs at import time: the GPU
is probed on the first ``"auto"``/``"cuda"`` resolution only.
"""

import functools
import importlib
import importlib.util

from ._validation import check_choice

DEVICES = ("auto", "cpu", "cuda")
_BACKEND_MODULES = {"cpu": "fastrnn.kernels.cpu"}


@functools.lru_cache(maxsize=None)
def cuda_status():
    """``(usable, reason)``: whether a CUDA GPU can run fastrnn, and why not.

    Probes once per process, on first call: numba-cuda installed, a GPU
    visible to it, and a CUDA backend in this fastrnn build.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        return False, "numba-cuda is not installed (pip install 'fastrnn[cuda]')"
    try:
        from numba import cuda
        gpu = cuda.is_available()
    except Exception as exc:  # a broken driver must not break the CPU path
        return False, f"numba.cuda failed to start: {exc}"
    if not gpu:
        return False, "no CUDA GPU is visible to numba.cuda"
    if "cuda" not in _BACKEND_MODULES:
        return False, "this fastrnn build has no CUDA backend yet"
    return True, "a CUDA GPU is available"


def resolve_device(device):
    """Turn ``"auto"``/``"cpu"``/``"cuda"`` into the device that will run.

    Raises
    ------
    ValueError
        For an unknown name, or ``"cuda"`` when no usable GPU is present.
    """
    check_choice("device", device, DEVICES)
    if device == "cpu":
        return "cpu"
    usable, reason = cuda_status()
    if device == "auto":
        return "cuda" if usable else "cpu"
    if not usable:
        raise ValueError(f"device='cuda' was requested but CUDA is not usable: {reason}")
    return "cuda"


def get_backend(device):
    """The backend module for a resolved device (imported, so compiled, on first use)."""
    return importlib.import_module(_BACKEND_MODULES[device])

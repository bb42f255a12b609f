"""Library defaults, in one place.

``FASTRNN_CACHE=0`` turns off numba's on-disk kernel cache (default on), and
``FASTRNN_FASTMATH=1`` lets LLVM reassociate floating point in the kernels
(default off, so results are reproducible and match the references to
rounding). Both are read once, when the first kernel module is imported.
"""

import os

import numpy as np


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


#: numba ``cache=True`` for every kernel.
CACHE = _env_flag("FASTRNN_CACHE", True)
#: numba ``fastmath`` for every kernel.
FASTMATH = _env_flag("FASTRNN_FASTMATH", False)
#: dtype of parameters when a layer is built without ``dtype=``.
DEFAULT_DTYPE = np.float32
#: floating dtypes the kernels are compiled for.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

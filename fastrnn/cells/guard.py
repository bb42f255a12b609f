"""The error guard on one sequence's ``dL/dh_t``, written once for both backends.

Plain Python over one row, like the cell functions: the CPU scans compile it
with ``numba.njit(inline="always")``, the CUDA kernels with
``numba.cuda.jit(device=True)``.
"""

import math

import numpy as np


def guard_row(row, t, b, clip, norms, record):
    """Measure, and clip, the error ``dL/dh_t`` of sequence ``b`` (``row``).

    Its 2-norm, summed in float64 in order, goes to ``norms[t, b]`` when
    ``record``; with ``clip > 0`` a row longer than ``clip`` is scaled to length
    ``clip`` before it flows on, so the error is bounded where it arises.
    """
    total = 0.0
    for j in range(row.shape[0]):
        value = np.float64(row[j])
        total += value * value
    norm = math.sqrt(total)
    if record:
        norms[t, b] = norm
    if clip > 0.0 and norm > clip:
        scale = clip / norm
        for j in range(row.shape[0]):
            row[j] = row[j] * scale

"""Library defaults, in one place.

``FASTRNN_CACHE=0`` turns off numba's on-disk kernel cache (default on), and
``FASTRNN_FASTMATH=1`` lets LLVM reassociate floating point in the kernels
(default off, so results are reproducible and match the references to
rounding). Both are read once, when the first kernel module is imported.
``FASTRNN_PARALLEL=0`` keeps every scan on BLAS threads (see
:mod:`fastrnn.kernels.cpu._threads`); :data:`PARALLEL_MIN_WORK` is read at
each call, so tests can lower it.
"""

import os

import numpy as np


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value.strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"environment variable {name} must be a whole number (bytes or "
                         f"counts, no unit), got {value!r}") from None


_POOL_FLOOR, _POOL_CEILING = 256 << 20, 4 << 30   # bounds of default_pool_bytes
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _cgroup_memory_limit(paths=_CGROUP_LIMITS):
    """The memory limit of this process's cgroup in bytes (v2 ``memory.max``, else v1
    ``memory.limit_in_bytes``), or None where there is none or it cannot be read."""
    for path in paths:
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        return int(text) if text.isdigit() else None   # "max": no limit
    return None


def _physical_memory():
    """Bytes of physical memory, or None where ``os.sysconf`` cannot tell (Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def default_pool_bytes(physical=None, cgroup_limit=None):
    """The default of :data:`POOL_BYTES`: a sixteenth of the memory this process may
    use (the machine's, or its cgroup's limit when lower), within 256 MiB and
    4 GiB; 256 MiB when neither is known.

    A fixed 256 MiB was below one training call of the larger float64 layers
    (an LSTM (100, 128, 512, 512) hands back 418 MiB of tape and gradients), so
    every call took part of its memory fresh from the kernel: two threads,
    forward+backward, median 1532 against 1476 ms and up to 1854 against 1557,
    with 63 ms of system time a call against none.
    """
    limits = [value for value in (physical, cgroup_limit) if value]
    if not limits:
        return _POOL_FLOOR
    return min(max(min(limits) // 16, _POOL_FLOOR), _POOL_CEILING)


#: numba ``cache=True`` for every kernel.
CACHE = _env_flag("FASTRNN_CACHE", True)
#: numba ``fastmath`` for every kernel.
FASTMATH = _env_flag("FASTRNN_FASTMATH", False)
#: dtype of parameters when a layer is built without ``dtype=``.
DEFAULT_DTYPE = np.float32
#: floating dtypes the kernels are compiled for.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Run the LSTM scans on numba's threads (own recurrent product, one BLAS
#: thread per numba thread) when numba has a thread-safe threading layer.
PARALLEL = _env_flag("FASTRNN_PARALLEL", True)
#: Multiply-adds of one recurrent step (batch * gate rows * state size) and
#: batch size from which the numba-threaded scans pay (measured here: 0.5-0.7x
#: the BLAS path's time at 2M multiply-adds a step, 1.0-1.2x at 1M, 2-4x at
#: 64K, and 1.2x for a batch of one); below them BLAS runs the scan.
PARALLEL_MIN_WORK = _env_int("FASTRNN_PARALLEL_MIN_WORK", 1 << 20)
PARALLEL_MIN_BATCH = _env_int("FASTRNN_PARALLEL_MIN_BATCH", 2)
#: Sequences per thread from which the RNN and GRU scans (and some LSTM ones)
#: split their batch across numba's threads, each thread running the whole
#: scan for its block of sequences (:func:`~fastrnn.kernels.cpu._threads.
#: batch_blocks`).
SPLIT_MIN_ROWS = _env_int("FASTRNN_SPLIT_MIN_ROWS", 8)
#: An LSTM without projection splits its batch (rather than its hidden units)
#: across the threads when its whole ``W_hh`` takes at most this many bytes
#: (every thread then keeps all of it in its core's cache; measured at T=2000,
#: B=16, H=128: 85-89 against 124-128 ms forward+backward, machine loaded) or
#: when every block gets at least :data:`LSTM_SPLIT_MIN_ROWS` sequences (then
#: each step's product is a GEMM that BLAS runs well: (100, 64, 128, 256)
#: 47-49 against 54-58 ms, (100, 128, 512, 512) 415 against 460-472 ms; at
#: (35, 32, 28, 256) the unit split is as fast or slightly faster). Otherwise
#: it splits its hidden units, each thread keeping its rows of ``W_hh``.
SPLIT_MAX_WEIGHT_BYTES = _env_int("FASTRNN_SPLIT_MAX_WEIGHT_BYTES", 512 * 1024)
LSTM_SPLIT_MIN_ROWS = _env_int("FASTRNN_LSTM_SPLIT_MIN_ROWS", 32)
#: An LSTM or RNN scan computes the input's product inside each step (one product
#: of ``[1, x_t, h_{t-1}]`` and ``[bias; W_ih^T; W_hh^T]``; per thread when the
#: LSTM splits its hidden units) when the batch has at least 8 sequences and the
#: dense input at most this many features or ``W_ih`` at most
#: :data:`LSTM_INPUT_IN_SCAN_BYTES` bytes, so no (T, B, G) input projection is
#: written and read back; other inputs are projected by one GEMM before the scan
#: (measurements: :func:`fastrnn.kernels.cpu._common.input_in_scan`). Setting both
#: to 0 always projects first. (The names predate the RNN's use of the rule.)
LSTM_INPUT_IN_SCAN = _env_int("FASTRNN_LSTM_INPUT_IN_SCAN", 64)
LSTM_INPUT_IN_SCAN_BYTES = _env_int("FASTRNN_LSTM_INPUT_IN_SCAN_BYTES", 1 << 20)
#: CUDA backend: run each direction of a recurrent layer as one persistent
#: kernel launch (the whole time loop on the device, :mod:`fastrnn.kernels.
#: cuda.persistent`) when its batch has at most
#: :data:`CUDA_PERSISTENT_MAX_BATCH` sequences; larger batches (and variants it
#: does not cover) take the per-step path, a GEMM and pointwise kernels per
#: step. ``FASTRNN_CUDA_PERSISTENT=0`` always takes the per-step path. Both are
#: read at each call. The threshold is a guess: it has not been timed on a GPU.
CUDA_PERSISTENT = _env_flag("FASTRNN_CUDA_PERSISTENT", True)
CUDA_PERSISTENT_MAX_BATCH = _env_int("FASTRNN_CUDA_PERSISTENT_MAX_BATCH", 32)
#: Most bytes of idle memory blocks :mod:`fastrnn._memory` keeps for the arrays
#: calls hand back (tapes, outputs, gradients); 0 turns the pool off. Read at
#: each allocation. Default: :func:`default_pool_bytes` (1.5 GiB on a 24 GiB
#: machine); the pool only ever keeps blocks that calls used.
POOL_BYTES = _env_int("FASTRNN_POOL_BYTES",
                      default_pool_bytes(_physical_memory(), _cgroup_memory_limit()))

"""Which threads run a scan: numba's, or BLAS's, never both at once.

A scan whose step is large enough runs on numba's threads: each thread owns a
block of hidden units, computes their recurrent product with its own kernel
(:func:`~._strips.strip_product`, the weights of its units staying in its core's cache)
and their pointwise math, and the large GEMMs before and after the loop are
split into row blocks, one per numba thread (:mod:`._gemm`: the input
projection a single-threaded BLAS call per block, the gradients the
register-tiled kernels of :mod:`._simd`).

BLAS must then run single-threaded: OpenBLAS's worker threads spin for a while
after each call, and spinning workers of one pool next to busy threads of the
other made the LSTM forward 3x slower here. :func:`single_blas_thread` sets
SciPy's OpenBLAS (the one numba's ``np.dot`` calls) to one thread for the
duration of a call and restores it afterwards; nested and concurrent calls
share one count, so the last to leave restores it.

numba's threads are only used with a thread-safe threading layer (TBB or
OpenMP: a parallel region costs about 1 microsecond there); numba's fallback
"workqueue" layer costs about 100 microseconds a region and aborts the process
when two Python threads launch regions at once, so with it every scan stays on
BLAS threads.
"""

import contextlib
import functools
import importlib
import os
import threading

import numba

from ... import config
from ._gemm import SPLIT

_lock = threading.Lock()
_users = 0
_saved_threads = None


@functools.lru_cache(maxsize=None)
def parallel_layer_available():
    """Whether numba can use a thread-safe threading layer (TBB or OpenMP)."""
    if numba.config.THREADING_LAYER == "workqueue":
        return False
    for module in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{module}")
        except ImportError:
            continue
        return True
    return False


_recent = threading.local()


def note_scan_pool(threaded):
    """Record which pool the latest recurrent scan of this thread ran on."""
    _recent.numba = threaded


def follow_scan_pool(work, rows):
    """Whether a dense product runs on numba's threads: when it is large enough and
    the latest recurrent scan did too.

    A dense layer next to a recurrent one (a read-out, a projection) then uses
    the same pool as its neighbour. Mixing them costs: BLAS's workers spinning
    beside numba's threads made a char-LM step 3-5x slower (LSTM on numba's
    threads with a multi-threaded BLAS read-out, or a GRU on BLAS threads with
    a numba-threaded read-out).
    """
    return getattr(_recent, "numba", False) and use_parallel_scan(work, rows)


def use_parallel_scan(work_per_step, batch):
    """Whether a scan with this many multiply-adds per step runs on numba's threads.

    Deliberately independent of the number of threads (with one thread the
    blocks run one after the other), so that the same call computes the same
    bits with any thread count.
    """
    return (config.PARALLEL and work_per_step >= config.PARALLEL_MIN_WORK
            and batch >= config.PARALLEL_MIN_BATCH and parallel_layer_available())


def batch_blocks(work_per_step, batch):
    """Blocks of sequences a serial-kernel scan splits its batch into (1: no split).

    Sequences never interact, so each numba thread can run the whole time loop
    for its own block of them, with no synchronisation between steps; each
    step's recurrent product is then one :func:`~._strips.strip_product` per block.
    That pays once every block's product is a real GEMM (see
    :data:`fastrnn.config.SPLIT_MIN_ROWS`). The block count is the constant
    :data:`~._gemm.SPLIT`, not the thread count, so results are the same on
    any machine.
    """
    if use_parallel_scan(work_per_step, batch) and batch >= SPLIT * config.SPLIT_MIN_ROWS:
        return SPLIT
    return 1


def blas_threads_for(split):
    """The BLAS setting of work split on numba's threads (one BLAS thread), or not."""
    return single_blas_thread() if split else contextlib.nullcontext()


def unit_chunk(hidden, threads=None):
    """Hidden units per thread: a multiple of 4 (the kernel's row block).

    Because every chunk starts at a multiple of 4, each unit's products are
    computed by the same code path whatever the number of threads, so results
    do not depend on it.
    """
    threads = numba.get_num_threads() if threads is None else threads
    per_thread = -(-hidden // threads)
    return max(4, -(-per_thread // 4) * 4)


@functools.lru_cache(maxsize=None)
def _kernel_blas():
    """threadpoolctl's controller of SciPy's OpenBLAS, or None when there is none.

    SciPy's wheels bundle their own OpenBLAS under ``scipy.libs`` (NumPy's is
    another copy); a SciPy linked to a shared OpenBLAS (conda) has only one.
    """
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba's np.dot calls)
    from threadpoolctl import ThreadpoolController
    openblas = [library for library in ThreadpoolController().lib_controllers
                if library.internal_api == "openblas"]
    scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__))
    for library in openblas:
        if os.path.abspath(library.filepath).startswith((scipy_dir + os.sep, scipy_dir + ".libs")):
            return library
    return openblas[0] if len(openblas) == 1 else None


@contextlib.contextmanager
def single_blas_thread():
    """Run the body with SciPy's OpenBLAS limited to one thread."""
    global _users, _saved_threads
    library = _kernel_blas()
    if library is None:
        yield
        return
    with _lock:
        if _users == 0:
            _saved_threads = library.get_num_threads()
            if _saved_threads != 1:
                library.set_num_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved_threads != 1:
                library.set_num_threads(_saved_threads)

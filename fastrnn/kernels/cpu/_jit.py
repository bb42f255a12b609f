"""The numba decorators every CPU kernel uses, configured in one place."""

import hashlib
import pathlib

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ... import config
from ...cells import activations as reference_activations
from ...cells import compile_for_target
from . import activations

#: IEEE semantics for float division (inf/NaN, never ZeroDivisionError): what
#: a numerical library owes its users, and what lets LLVM vectorise the loops.
#: Fused multiply-add contraction is always allowed (one rounding instead of
#: two, as GCC does by default; 0.6 -> 0.4 ms for the LSTM forward pointwise
#: at the d2l shape); ``FASTRNN_FASTMATH=1`` allows every fast-math rewrite.
_OPTIONS = dict(fastmath=True if config.FASTMATH else {"contract"}, error_model="numpy")
inline_jit = numba.njit(inline="always", **_OPTIONS)


def _drop_stale_cache():
    """Delete this package's numba cache when the cell math it inlines has changed.

    numba keys a cached kernel on its own source file only, so editing
    :mod:`fastrnn.cells` (or a helper the scans inline) would leave scans
    compiled from the old code. A stamp of those sources kept beside the cache
    detects that. Failures
    (a read-only install) are ignored: then nothing can have been edited.
    """
    package = pathlib.Path(__file__).parents[2]
    sources = sorted(package.glob("cells/*.py")) + sorted(package.glob("kernels/cpu/*.py"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources))
    cache_dir = pathlib.Path(__file__).parent / "__pycache__"
    stamp = cache_dir / "cells.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        for path in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            path.unlink()
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass


if config.CACHE:
    _drop_stale_cache()

#: Compiled time-loop scans: cached on disk, release the GIL (so layers can run
#: from several Python threads at once).
scan_jit = numba.njit(cache=config.CACHE, nogil=True, **_OPTIONS)


_CPU_ACTIVATIONS = {
    "tanh": activations.tanh,
    "sigmoid": activations.sigmoid,
    "relu": inline_jit(reference_activations.relu),
}


#: Loops over one row of a batch (the pointwise math of one time step for one
#: sequence). Kept out of line on purpose: LLVM vectorises these loops as
#: functions of their own but not once inlined into the time loop (measured
#: 1.6 ns against 15 ns per LSTM element here).
row_jit = numba.njit(cache=config.CACHE, nogil=True, **_OPTIONS)


#: Scans whose steps split their work across numba's threads (``prange``).
par_jit = numba.njit(parallel=True, cache=config.CACHE, nogil=True, **_OPTIONS)


def point_jit(function):
    """Compile a pointwise cell function from :mod:`fastrnn.cells` for the CPU scans."""
    return compile_for_target(function, inline_jit, _CPU_ACTIVATIONS)


@intrinsic
def unowned(typingctx, array):
    """The same array without its reference count: ``unowned(a)`` is a view of all of
    ``a`` whose views and calls never touch ``a``'s count.

    numba counts the references of an array on every view it makes and around
    every call it passes the array to: two atomic operations each, which on
    one core cost more than the arithmetic of a small step (LSTM (200, 1, 8,
    32) inference, 309 against 241 ns a step) and, with every thread counting
    on the same arrays, take a cache line from core to core. A scan calls it on
    its arguments only, which its caller keeps alive for the whole call; never
    on an array the scan allocates (its last owned reference may be dropped
    while the view is still in use).
    """
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(array)(context, builder, value=args[0])
        view = context.make_array(array)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(view, field, getattr(source, field))
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen

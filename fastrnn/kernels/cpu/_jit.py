"""The numba decorators every CPU kernel uses, configured in one place."""

import hashlib
import pathlib

import numba

from ... import config
from ...cells import compile_for_target

_inline_jit = numba.njit(inline="always", fastmath=config.FASTMATH)


def _drop_stale_cache():
    """Delete this package's numba cache when the cell math it inlines has changed.

    numba keys a cached kernel on its own source file only, so editing
    :mod:`fastrnn.cells` would leave scans compiled from the old equations.
    A stamp of the cell sources kept beside the cache detects that. Failures
    (a read-only install) are ignored: then nothing can have been edited.
    """
    cells = pathlib.Path(__file__).parents[2] / "cells"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(cells.glob("*.py"))))
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
scan_jit = numba.njit(cache=config.CACHE, nogil=True, fastmath=config.FASTMATH)


def point_jit(function):
    """Compile a pointwise cell function from :mod:`fastrnn.cells` for the CPU scans."""
    return compile_for_target(function, _inline_jit)

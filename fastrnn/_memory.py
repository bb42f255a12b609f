"""Recycled memory for the large arrays a call hands back: tapes, outputs, gradients.

Why: glibc's ``malloc`` serves a request above its mmap threshold (128 KiB at
first, then the size of the largest mapped block freed so far, at most 32 MiB)
with fresh pages from the kernel and unmaps them again when the block is freed.
Every such array then costs a page fault per 4 KiB on first touch, call after
call. Whether a training loop's arrays land above the threshold depends on
which sizes happened to be freed first, so the same loop ran in one of two
modes from process to process: a char-LM step (LSTM 256, batch 32 x 35, 76
characters) measured 14.9 ms with 17 page faults a step, or 20-24 ms with
2500-2700 faults and 9-12 ms of system time a step.

How: :func:`empty` returns an array whose memory belongs to a :class:`_Lease`.
NumPy's views keep the lease itself as their ``base`` (numpy follows the chain of
bases only through arrays), so the lease dies, and its block returns to the
pool, only when the last array using the memory is gone: nothing handed out is
ever reused while it is visible. The pool keeps at most
:data:`fastrnn.config.POOL_BYTES` of idle blocks (by default a sixteenth of the
memory, within 256 MiB and 4 GiB: :func:`fastrnn.config.default_pool_bytes`;
``FASTRNN_POOL_BYTES``, 0 turns it off; :func:`release` frees them) and hands a block to a
request of the same size class (sizes rounded up to an eighth of their power of
two). Arrays smaller than :data:`MIN_BYTES` come from ``np.empty`` as before.
"""

import math
import sys
import threading

import numpy as np

from . import config

#: Arrays smaller than this many bytes are not pooled (malloc's heap serves them
#: without fresh pages).
MIN_BYTES = 128 * 1024
_ALIGN = 64

_lock = threading.Lock()
_holder = [None]    # identity of the thread that holds _lock
_idle = {}          # block size -> list of idle blocks (uint8 arrays)
_idle_bytes = [0]


class _Locked:
    """``with _locked:`` holds :data:`_lock` and records which thread holds it, so
    that a finaliser run by that same thread (garbage collected while it holds
    the lock) can tell re-entry from another thread's turn."""

    def __enter__(self):
        me = threading.get_ident()
        _lock.acquire()
        _holder[0] = me

    def __exit__(self, *exc):
        _holder[0] = None
        _lock.release()


_locked = _Locked()


def size_class(nbytes):
    """``nbytes`` rounded up to a multiple of an eighth of its power of two (at
    least 4 KiB): the pool reuses a block for any request of the same class."""
    nbytes = int(nbytes)
    step = max(4096, 1 << max(0, nbytes.bit_length() - 4))
    return -(-nbytes // step) * step


def block_bytes(nbytes):
    """Size of the block that serves an array of ``nbytes``: its size class plus
    the slack for aligning the array to 64 bytes (so that a power-of-two array
    does not take a block of the next class)."""
    return size_class(nbytes) + _ALIGN


def _give_back(block):
    if _holder[0] == threading.get_ident():
        # Re-entry: a finaliser run while this thread holds the lock (garbage
        # collected inside the pool's own code). Waiting would deadlock, and the
        # pool's lists may be mid-update: the block is simply freed.
        return
    with _locked:
        if _idle_bytes[0] + block.nbytes <= config.POOL_BYTES:
            _idle.setdefault(block.nbytes, []).append(block)
            _idle_bytes[0] += block.nbytes
        _trim(config.POOL_BYTES)


class _Lease:
    """Owner of one pooled block while arrays use it; gives the block back when
    the last of them is gone."""

    __slots__ = ("block", "__array_interface__")

    def __init__(self, block, shape, dtype):
        self.block = block
        address = block.ctypes.data
        self.__array_interface__ = dict(
            shape=shape, typestr=dtype.str, version=3,
            data=(address + (-address) % _ALIGN, False))

    def __del__(self, _give_back=_give_back, _is_finalizing=sys.is_finalizing):
        # At interpreter exit the module's globals may already be gone; the
        # memory is being freed anyway.
        if not _is_finalizing():
            _give_back(self.block)


def _trim(bound):
    """Free idle blocks, largest first, until they hold at most ``bound`` bytes (the
    bound may have been lowered since they were kept). Call with the lock held."""
    if _idle_bytes[0] <= max(bound, 0):
        return   # the usual case, on every take and give-back: nothing to sort
    for size in sorted(_idle, reverse=True):
        blocks = _idle[size]
        while blocks and _idle_bytes[0] > max(bound, 0):
            blocks.pop()
            _idle_bytes[0] -= size
        if not blocks:
            del _idle[size]


def _take(nbytes):
    with _locked:
        _trim(config.POOL_BYTES)
        blocks = _idle.get(nbytes)
        if blocks:
            _idle_bytes[0] -= nbytes
            return blocks.pop()
    return None


def empty(shape, dtype):
    """An uninitialised C-contiguous array, from the pool when it is large.

    Parameters
    ----------
    shape : tuple of int
    dtype : data-type

    Returns
    -------
    ndarray
        Its memory returns to the pool when it and every view of it are gone.
    """
    dtype = np.dtype(dtype)
    shape = tuple(map(int, shape))   # map: 0.3 against 0.8 us for a generator
    nbytes = math.prod(shape) * dtype.itemsize   # Python ints: no overflow, and no ufunc call
    if config.POOL_BYTES <= 0:
        if _idle_bytes[0]:
            release()   # turned off since blocks were kept
        return np.empty(shape, dtype)
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    size = block_bytes(nbytes)
    block = _take(size)
    if block is None:
        block = np.empty(size, np.uint8)
    return np.asarray(_Lease(block, shape, dtype))


def zeros(shape, dtype):
    """:func:`empty` filled with zeros."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def release():
    """Free every idle block (the memory goes back to the allocator)."""
    with _locked:
        _idle.clear()
        _idle_bytes[0] = 0


def idle_bytes():
    """Bytes of idle blocks the pool holds now."""
    return _idle_bytes[0]

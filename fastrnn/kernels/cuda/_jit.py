"""How the CUDA backend compiles and launches its kernels.

Kernels are compiled lazily by ``numba.cuda.jit`` on first launch. Each one is
registered with the argument types it is launched with (:func:`kernel`), ``{f}``
standing for the float type, so that every kernel can also be compiled ahead of
time to PTX for both float types (``tests/test_cuda_ptx.py``) and so that the
tests can check, launch by launch, that those declared types are the ones used.

The pointwise math comes from :mod:`fastrnn.cells`, compiled here as CUDA device
functions from the same source the CPU scans inline (:func:`point_device`).
"""

import numpy as np
from numba import cuda

from ...cells import ACTIVATION_NAMES, compile_for_target
from ...cells import activations as reference_activations

#: Threads per block of the elementwise kernels (one thread per element). Read
#: at every launch: the tests lower it so that the tiny shapes the simulator can
#: afford still spread over several blocks.
BLOCK = 128

#: Float types every kernel is declared (and PTX-compiled) for.
FLOAT_TYPES = ("float32", "float64")

#: ``qualified name -> (python function, signature template, float types)`` of every kernel.
KERNELS = {}

#: When a list, every launch appends ``(qualified name, args)`` to it (tests).
launch_log = None

_device = cuda.jit(device=True)
_DEVICE_ACTIVATIONS = {name: _device(getattr(reference_activations, name))
                       for name in ACTIVATION_NAMES}


@cuda.jit(device=True)
def row_col(index, width):
    """``(row, column)`` of the flat element ``index`` of a row-major array ``width``
    columns wide: how a one-thread-per-element kernel finds its element. The
    caller checks ``index`` against the element count first."""
    row = index // width
    return row, index - row * width


def point_device(function):
    """Compile a pointwise cell function of :mod:`fastrnn.cells` as a CUDA device function."""
    return compile_for_target(function, _device, _DEVICE_ACTIVATIONS)


def signature(template, float_type):
    """A kernel's signature string for one float type (``{f}`` replaced)."""
    return template.format(f=float_type)


class Kernel:
    """A registered ``numba.cuda`` kernel and how it is launched.

    Parameters
    ----------
    function : callable
        The kernel's Python source.
    template : str
        Its signature, ``{f}`` standing for ``float32``/``float64``.
    name : str, optional
        Registry name (default ``module.function``).
    float_types : tuple of str, optional
        The float types it is launched with (default :data:`FLOAT_TYPES`; a
        kernel whose source fixes its float type names that one).
    """

    def __init__(self, function, template, name=None, float_types=FLOAT_TYPES):
        self.function = function
        self.template = template
        self.name = name or f"{function.__module__}.{function.__name__}"
        self.dispatcher = cuda.jit(function)
        KERNELS[self.name] = (function, template, tuple(float_types))

    def launch(self, grid, block, *args):
        """Launch on a ``grid`` of ``block``-sized blocks (ints or 2-tuples)."""
        if launch_log is not None:
            launch_log.append((self.name, args))
        self.dispatcher[grid, block](*args)

    def over(self, count, *args):
        """Launch one thread per element of a ``count``-element range, :data:`BLOCK` a block."""
        block = BLOCK
        self.launch(max(1, -(-count // block)), block, *args)


def kernel(template, float_types=FLOAT_TYPES):
    """Decorator: register a kernel function with its signature template (and, for a
    kernel whose source fixes its float type, that type)."""
    def register(function):
        return Kernel(function, template, float_types=float_types)
    return register


def one_of(dtype):
    """The number 1 in ``dtype`` (the cell functions' ``one`` argument)."""
    return np.dtype(dtype).type(1)

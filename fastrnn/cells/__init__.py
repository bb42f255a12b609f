"""The pointwise math of each recurrent cell, written once.

Every function here is plain Python over scalars, so the same source compiles
with ``numba.njit(inline="always")`` for the CPU scans and with
``numba.cuda.jit(device=True)`` for the GPU kernels. The recurrent and input
matrix products are *not* here: the scans compute them with one GEMM per step
(recurrent) and one GEMM for all steps (input), and pass the resulting
pre-activations in.
"""

import types

from . import activations

#: The activations a cell function may call, by name.
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")


def compile_for_target(function, decorator, target_activations=None):
    """Compile a cell function for one target (CPU ``njit`` or CUDA device).

    Cell functions call the activations of :mod:`fastrnn.cells.activations` by
    name; a compiled function can only call functions compiled for the same
    target. This gives ``function`` a copy of its globals in which those names
    point at ``target_activations`` (name -> callable the target can compile;
    by default the reference activations compiled with ``decorator``), leaving
    the plain Python original untouched.
    """
    namespace = dict(function.__globals__)
    for name in ACTIVATION_NAMES:
        if target_activations is not None:
            namespace[name] = target_activations[name]
        else:
            namespace[name] = decorator(getattr(activations, name))
    clone = types.FunctionType(function.__code__, namespace, function.__name__,
                               function.__defaults__, function.__closure__)
    clone.__module__, clone.__qualname__ = function.__module__, function.__qualname__
    clone.__doc__ = function.__doc__
    return decorator(clone)

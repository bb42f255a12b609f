"""Compute backends.

Each backend package (``cpu``, ``cuda``) exposes the same entry points,
one pair per cell kind, for one direction of one layer:

``forward(spec, weights, x, state0, lengths, reverse, keep_tape, y, col0)``
    -> ``(state_n, tape)``
``backward(spec, weights, grads, tape, dy, col0, dstate_n, dx, error_clip=None, error_norms=None)``
    -> ``dstate0`` (``dx`` is added to, or None when the input gradient is not wanted)

:mod:`fastrnn.device` picks the backend; :mod:`fastrnn.nn` never imports a
backend directly, so importing :mod:`fastrnn` compiles nothing.
"""

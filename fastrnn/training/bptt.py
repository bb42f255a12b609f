r"""Truncated backpropagation through time, TBPTT(k1, k2), made explicit.

Williams and Peng's scheme: run the network forward over a long sequence and,
every ``k1`` steps, backpropagate the loss of the outputs produced since the
last window through the last ``k2 >= k1`` steps, holding the state that
entered those ``k2`` steps constant. Full BPTT is ``k1 = k2 = T``;
``k1 = k2`` is the common "detach every k steps" loop.

Windows end at :math:`t_e = k_1, 2k_1, \dots` and at :math:`T`. Window
:math:`i` ending at :math:`t_e` (the previous one ended at :math:`t_p`) does

.. math::

    L_i = \ell\big(y_{[t_p, t_e)}, \text{targets}_{[t_p, t_e)}\big), \qquad
    g_i = \frac{\partial L_i}{\partial \theta}\Big|_{h_{s}\ \text{held constant}},
    \quad s = \max(0, t_e - k_2),

then calls ``on_window(i, L_i)`` (where an optimizer steps). For full windows
:math:`[t_p, t_e) = [t_e - k_1, t_e)`; a last, shorter window scores only the
outputs not scored yet, so every output's loss is counted exactly once.

How the engine keeps the past
-----------------------------
The forward pass runs **once** over every step, in chunks cut at every window
end and every span start :math:`\max(0, t_e - k_2)`. Each chunk's tape is
kept while a later window's span still reaches into it, so the backward of a
window chains through the tapes of the chunks in :math:`[s, t_e)` (the state
gradient leaving one chunk's backward enters the one before) and stops at
:math:`s`. The states and activations of the overlap are the ones the forward
pass computed (with the weights of that time), as in Williams and Peng: no
step is ever recomputed. Memory is the tapes of at most ``k2 + k1`` steps,
whatever ``T``: O((k1 + k2) * batch * hidden), not O(T).

State across calls is explicit: ``run`` returns the final state; pass it as
``hx`` to the next call to carry it (sequential sampling) or pass ``None`` to
start from zeros (random sampling).
"""

import numpy as np

from .._validation import check_bool, check_int, check_positive, describe, is_device_array
from ..nn.recurrent import RecurrentLayer
from ..nn.sequential import Sequential


def _concatenate(parts, axis):
    """``numpy.concatenate`` of the chunks' outputs; on the GPU for GPU arrays (time axis 0)."""
    if not is_device_array(parts[0]):
        return np.concatenate(parts, axis=axis)
    if axis != 0:
        raise ValueError("a batch_first model's GPU outputs cannot be joined along time on the "
                         "GPU yet; pass x as a numpy array or use batch_first=False")
    from ..kernels.cuda._arrays import concatenate0
    return concatenate0(parts)


class TruncatedBPTT:
    """Truncated backpropagation through time over a model and a loss.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Sequential
        Unidirectional (a reverse direction would need the future). Time is
        axis 0 of its input, or axis 1 for a ``batch_first`` layer.
    loss_fn : callable
        ``loss_fn(y_window, targets_window) -> (loss, dy_window)``: a real
        loss and its gradient with respect to ``y_window`` (same shape), for
        example ``fastrnn.losses.softmax_cross_entropy``.
    k1 : int >= 1
        Steps between backward passes (and optimizer steps).
    k2 : int >= k1, optional
        Steps each backward pass reaches back; defaults to ``k1``.
    error_clip : float > 0, optional
        Per-step error clipping inside every backward scan: at every step the
        gradient reaching ``h_t`` of each sequence is scaled to 2-norm at most
        ``error_clip`` (see :meth:`fastrnn.LSTM.backward`).
    record_error_norms : bool, default False
        Record ``||dL/dh_t||`` at every step of every window (before clipping):
        after each window's backward, :attr:`error_norms` holds one array per
        recurrent layer, shape (num_layers, s_steps, B) where ``s_steps`` is the
        window's backward span, and :attr:`window` its ``(start, scored, end)``
        times. Off, it costs nothing.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> model = fr.Sequential([fr.LSTM(3, 8, seed=0), fr.Linear(8, 1, seed=0)])
    >>> x = np.random.default_rng(0).normal(size=(20, 2, 3)).astype(np.float32)
    >>> targets = x[:, :, :1].cumsum(axis=0)
    >>> sgd = fr.training.SGD(model, lr=0.01)
    >>> engine = fr.training.TruncatedBPTT(model, fr.losses.mse, k1=5, k2=10)
    >>> state, mean_loss = engine.run(x, targets, on_window=lambda i, loss: sgd.step())
    >>> engine.windows
    [(0, 0, 5), (0, 5, 10), (5, 10, 15), (10, 15, 20)]
    """

    def __init__(self, model, loss_fn, k1, k2=None, *, error_clip=None,
                 record_error_norms=False):
        if not isinstance(model, (RecurrentLayer, Sequential)):
            raise TypeError("model must be a RNN, LSTM, GRU or Sequential, "
                            f"got {describe(model)}")
        recurrent = model._recurrent() if isinstance(model, Sequential) else [model]
        if any(layer.bidirectional for layer in recurrent):
            raise ValueError("model must be unidirectional for truncated BPTT (a reverse "
                             "direction reads the future); got a bidirectional layer")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {describe(loss_fn)}")
        self.model = model
        self.loss_fn = loss_fn
        self.k1 = check_int("k1", k1, 1)
        self.k2 = self.k1 if k2 is None else check_int("k2", k2, 1)
        if self.k2 < self.k1:
            raise ValueError(f"k2 must be >= k1={self.k1}, got {self.k2}")
        self.error_clip = None if error_clip is None else check_positive("error_clip",
                                                                          error_clip)
        self.record_error_norms = check_bool("record_error_norms", record_error_norms)
        self._recurrent = recurrent
        self._time_axis = 1 if getattr(model, "batch_first", False) else 0
        #: list of (start, scored, end): each window's backward span [start, end)
        #: and the outputs it scored, [scored, end). Filled by :meth:`run`.
        self.windows = []
        #: Per recurrent layer, ``||dL/dh_t||`` of the last window (see above).
        self.error_norms = None
        #: ``(start, scored, end)`` of the last window.
        self.window = None
        #: Largest number of time steps whose tapes were held at once in the last run.
        self.peak_tape_steps = 0

    # ----------------------------------------------------------------- planning
    def plan(self, steps):
        """The windows of a sequence of ``steps`` steps: a list of ``(start, scored, end)``.

        Window ``i`` scores the outputs ``[scored, end)`` and backpropagates
        through ``[start, end)``, ``start = max(0, end - k2)``.
        """
        steps = check_int("steps", steps, 1)
        ends = list(range(self.k1, steps, self.k1)) + [steps]
        scored = [0] + ends[:-1]
        return [(max(0, end - self.k2), begin, end) for begin, end in zip(scored, ends)]

    @staticmethod
    def _cuts(windows):
        """Chunk boundaries: every window end and every span start."""
        points = {0}
        for start, _, end in windows:
            points.update((start, end))
        return sorted(points)

    # ------------------------------------------------------------------ running
    def run(self, x, targets, hx=None, on_window=None):
        """Run the windows over ``x``; return ``(final_state, mean_loss)``.

        Parameters
        ----------
        x : ndarray
            Input of the model, time along axis 0 (axis 1 for a batch-first
            layer): features, or token ids for an Embedding or one-hot first
            layer.
        targets : ndarray
            Targets of the loss, with the same time axis and length as ``x``.
        hx : state or None
            State entering step 0, as the model's ``forward`` takes it (None:
            zeros). Pass the returned state back to carry it across calls.
        on_window : callable, optional
            ``on_window(i, loss)``, called after window ``i``'s backward with
            the gradients of that window in the model's ``flat_grads``
            (zeroed before each window). A window whose ``dy`` is all zero (a
            loss that scores nothing in it) skips the backward pass: its
            gradients are zero.

        Returns
        -------
        state : the model's state after the last step
        mean_loss : float
            The windows' losses weighted by the outputs each scored (the mean
            per output for a mean-reduced loss).
        """
        if on_window is not None and not callable(on_window):
            raise TypeError(f"on_window must be callable or None, got {describe(on_window)}")
        axis = self._time_axis
        x = x if is_device_array(x) else np.asarray(x)
        targets = targets if is_device_array(targets) else np.asarray(targets)
        if x.ndim <= axis or targets.ndim <= axis:
            raise ValueError(f"x and targets must have a time axis {axis}, got shapes "
                             f"{x.shape} and {targets.shape}")
        steps = x.shape[axis]
        if targets.shape[axis] != steps:
            raise ValueError(f"targets must have {steps} time steps (axis {axis}) like x, "
                             f"got shape {targets.shape} for x of shape {x.shape}")
        if steps == 0:
            raise ValueError(f"x must have at least one time step (axis {axis}), got shape "
                             f"{x.shape}")
        self.windows = self.plan(steps)
        cuts = self._cuts(self.windows)
        chunks = []  # (begin, end, y, tape), in time order, those still needed
        state = hx
        total, self.peak_tape_steps = 0.0, 0
        cut = 0  # chunks [cuts[cut], cuts[cut + 1]) onwards are not run yet
        for index, (start, scored, end) in enumerate(self.windows):
            while cuts[cut] < end:
                begin, stop = cuts[cut], cuts[cut + 1]
                y, state, tape = self.model.forward(self._slice(x, begin, stop), state)
                chunks.append((begin, stop, y, tape))
                cut += 1
            self.peak_tape_steps = max(self.peak_tape_steps, chunks[-1][1] - chunks[0][0])
            loss = self._window(index, start, scored, end, chunks, targets)
            total += loss * (end - scored)
            if on_window is not None:
                on_window(index, loss)
            following = self.windows[index + 1][0] if index + 1 < len(self.windows) else steps
            chunks = [chunk for chunk in chunks if chunk[1] > following]
        return state, total / steps

    def _slice(self, array, begin, end):
        index = [slice(None)] * array.ndim
        index[self._time_axis] = slice(begin, end)
        return array[tuple(index)]

    def _window(self, index, start, scored, end, chunks, targets):
        """Loss of one window and its backward through ``[start, end)``; returns the loss."""
        axis = self._time_axis
        scoring = [chunk for chunk in chunks if chunk[0] >= scored]
        y_window = _concatenate([chunk[2] for chunk in scoring], axis)
        result = self.loss_fn(y_window, self._slice(targets, scored, end))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"loss_fn must return a pair (loss, dy), got {describe(result)}")
        loss, dy_window = result
        dy_window = dy_window if is_device_array(dy_window) else np.asarray(dy_window)
        if tuple(dy_window.shape) != tuple(y_window.shape):
            raise ValueError(f"loss_fn must return dy of the output's shape "
                             f"{tuple(y_window.shape)}, got {tuple(dy_window.shape)} "
                             f"(window {index})")
        self.model.zero_grad()
        if (not self.record_error_norms and isinstance(dy_window, np.ndarray)
                and not dy_window.any()):
            self.window = (start, scored, end)  # nothing to backpropagate: the gradient is 0
            return float(loss)
        span = [chunk for chunk in chunks if chunk[0] >= start]
        recorded = []  # per chunk, latest first: one norms array per recurrent layer
        dstate = None
        for begin, stop, _, tape in reversed(span):
            dy = (self._slice(dy_window, begin - scored, stop - scored) if begin >= scored
                  else None)
            norms = None
            if self.record_error_norms:
                batch = self._batch(tape)
                norms = [np.zeros((layer.num_layers, stop - begin, batch))
                         for layer in self._recurrent]
                recorded.append(norms)
            dstate = self._backward(tape, dy, dstate, norms)
        if self.record_error_norms:
            self.error_norms = [np.concatenate(parts[::-1], axis=1)
                                for parts in zip(*recorded)]
        self.window = (start, scored, end)
        return float(loss)

    def _batch(self, tape):
        """Batch size of a forward, from the tape of its first recurrent layer."""
        if isinstance(self.model, Sequential):
            tape = next(part for layer, part in zip(self.model.layers, tape)
                        if isinstance(layer, RecurrentLayer))
        return tape.batch

    def _backward(self, tape, dy, dstate, norms):
        options = dict(error_clip=self.error_clip, input_grad=False)  # nothing needs dx
        if isinstance(self.model, Sequential):
            options["error_norms"] = norms
        elif norms is not None:
            options["error_norms"] = norms[0]
        return self.model.backward(tape, dy, dstate, **options)[1]

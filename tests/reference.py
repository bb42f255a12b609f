"""Independent float64 NumPy references for every cell and layer configuration.

Written from the equations, gate by gate, with nothing shared with the
package's kernels: per-gate weight slices, explicit loops over time, and each
sequence of a batch run on its own (so ``lengths`` is handled by slicing, not
masking).
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _split(matrix, parts):
    return np.split(np.asarray(matrix, dtype=np.float64), parts, axis=0)


def rnn_step(p, x, h, nonlinearity):
    a = p["weight_ih"] @ x + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"]
    return (np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)),


def lstm_step(p, x, h, c, coupled, peephole, project):
    names = ("f", "g", "o") if coupled else ("i", "f", "g", "o")
    w_x = dict(zip(names, _split(p["weight_ih"], len(names))))
    w_h = dict(zip(names, _split(p["weight_hh"], len(names))))
    b = dict(zip(names, _split(p["bias_ih"] + p["bias_hh"], len(names))))
    pre = {n: w_x[n] @ x + w_h[n] @ h + b[n] for n in names}
    peep = {"i": 0.0, "f": 0.0, "o": 0.0}
    if peephole:
        rows = ("f", "o") if coupled else ("i", "f", "o")
        peep.update(dict(zip(rows, np.asarray(p["weight_ch"], dtype=np.float64))))
    f = sigmoid(pre["f"] + peep["f"] * c)
    i = 1.0 - f if coupled else sigmoid(pre["i"] + peep["i"] * c)
    g = np.tanh(pre["g"])
    c_new = f * c + i * g
    o = sigmoid(pre["o"] + peep["o"] * c_new)
    h_new = o * np.tanh(c_new)
    if project:
        h_new = p["weight_hr"] @ h_new
    return h_new, c_new


def gru_step(p, x, h, reset_after):
    w_ir, w_iz, w_in = _split(p["weight_ih"], 3)
    w_hr, w_hz, w_hn = _split(p["weight_hh"], 3)
    b_ir, b_iz, b_in = _split(p["bias_ih"], 3)
    b_hr, b_hz, b_hn = _split(p["bias_hh"], 3)
    r = sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    if reset_after:
        n = np.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    else:
        n = np.tanh(w_in @ x + b_in + w_hn @ (r * h) + b_hn)
    return (1.0 - z) * n + z * h,


def layer_forward(kind, state_dict, x, hx, lengths, num_layers, bidirectional, **cell):
    """Reference forward of a whole layer, in the (T, B, F) layout.

    ``state_dict`` uses PyTorch's names; missing biases mean ``bias=False``.
    ``hx`` is a tuple of state arrays of shape (L*D, B, F). Returns
    ``(y, states_n)``.
    """
    steps, batch, _ = x.shape
    directions = 2 if bidirectional else 1
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    states_n = [np.array(s, dtype=np.float64) for s in hx]
    layer_input = np.asarray(x, dtype=np.float64)
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            p = {name[:-len(suffix)]: np.asarray(v, dtype=np.float64)
                 for name, v in state_dict.items() if name.endswith(suffix)}
            gates = p["weight_ih"].shape[0]
            p.setdefault("bias_ih", np.zeros(gates))
            p.setdefault("bias_hh", np.zeros(gates))
            row = layer * directions + direction
            out_size = states_n[0].shape[2]
            y = np.zeros((steps, batch, out_size))
            for b in range(batch):
                state = tuple(s[row, b].copy() for s in hx)
                order = range(lengths[b])
                for t in (reversed(order) if direction else order):
                    state = _step(kind, p, layer_input[t, b], state, cell)
                    y[t, b] = state[0]
                for s, value in zip(states_n, state):
                    s[row, b] = value
            outputs.append(y)
        layer_input = np.concatenate(outputs, axis=2)
    return layer_input, states_n


def _step(kind, p, x, state, cell):
    if kind == "rnn":
        return rnn_step(p, x, state[0], cell.get("nonlinearity", "tanh"))
    if kind == "lstm":
        return lstm_step(p, x, state[0], state[1], cell.get("coupled", False),
                         cell.get("peephole", False), cell.get("proj_size", 0) > 0)
    return gru_step(p, x, state[0], cell.get("reset_after", True))

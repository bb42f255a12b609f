"""A quick self-check: every cell against a float64 NumPy reference.

``python -m fastrnn info`` runs it. For each cell (and variant) a one-layer
layer runs on a small random input in float32 and float64; its outputs are
compared with a plain NumPy float64 implementation of the equations, and its
backward with a central finite difference of that reference along a random
direction in the space of inputs and parameters.
"""

import numpy as np

#: (name, layer class name, constructor keywords) of the checked cells.
CHECKS = [
    ("RNN tanh", "RNN", {"nonlinearity": "tanh"}),
    ("RNN relu", "RNN", {"nonlinearity": "relu"}),
    ("LSTM", "LSTM", {}),
    ("LSTM peephole", "LSTM", {"peephole": True}),
    ("LSTM coupled", "LSTM", {"coupled": True}),
    ("LSTM projection", "LSTM", {"proj_size": 3}),
    ("GRU", "GRU", {}),
    ("GRU reset before", "GRU", {"reset_after": False}),
]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(kind, params, x, options):
    """Float64 NumPy forward of a one-layer, one-direction layer; returns ``y``."""
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    bias = params["bias_ih_l0"] + params["bias_hh_l0"]
    hidden = w_hh.shape[0] // {"RNN": 1, "GRU": 3}.get(kind, 3 if options.get("coupled") else 4)
    h = np.zeros((x.shape[1], w_hh.shape[1]))
    c = np.zeros((x.shape[1], hidden))
    outputs = []
    for x_t in x:
        if kind == "RNN":
            a = x_t @ w_ih.T + h @ w_hh.T + bias
            h = np.tanh(a) if options.get("nonlinearity", "tanh") == "tanh" else np.maximum(a, 0)
        elif kind == "GRU":
            gx = x_t @ w_ih.T + params["bias_ih_l0"]
            r = _sigmoid(gx[:, :hidden] + h @ w_hh[:hidden].T + params["bias_hh_l0"][:hidden])
            z = _sigmoid(gx[:, hidden:2 * hidden] + h @ w_hh[hidden:2 * hidden].T
                         + params["bias_hh_l0"][hidden:2 * hidden])
            b_hn = params["bias_hh_l0"][2 * hidden:]
            if options.get("reset_after", True):
                n = np.tanh(gx[:, 2 * hidden:] + r * (h @ w_hh[2 * hidden:].T + b_hn))
            else:
                n = np.tanh(gx[:, 2 * hidden:] + (r * h) @ w_hh[2 * hidden:].T + b_hn)
            h = (1 - z) * n + z * h
        else:
            a = x_t @ w_ih.T + h @ w_hh.T + bias
            peep = params.get("weight_ch_l0", np.zeros((3, hidden)))
            if options.get("coupled"):
                a = np.concatenate([np.zeros_like(a[:, :hidden]), a], axis=1)
                peep = np.concatenate([np.zeros((1, hidden)), peep]) if "weight_ch_l0" in params \
                    else peep
            a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
            f = _sigmoid(a_f + peep[1] * c)
            i = 1 - f if options.get("coupled") else _sigmoid(a_i + peep[0] * c)
            c = f * c + i * np.tanh(a_g)
            h = _sigmoid(a_o + peep[2] * c) * np.tanh(c)
            if "weight_hr_l0" in params:
                h = h @ params["weight_hr_l0"].T
        outputs.append(h)
    return np.stack(outputs)


def check_cell(name, kind, options, seed=0):
    """Errors of one cell: ``{"forward float32", "forward float64", "backward float64"}``."""
    import fastrnn
    rng = np.random.default_rng(seed)
    steps, batch, features, hidden = 7, 3, 4, 5
    x64 = rng.standard_normal((steps, batch, features))
    errors = {}
    for dtype in (np.float32, np.float64):
        layer = getattr(fastrnn, kind)(features, hidden, dtype=dtype, seed=seed, **options)
        params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
        expected = reference_forward(kind, params, x64, options)
        y, _ = layer(x64.astype(dtype))
        scale = max(np.abs(expected).max(), 1e-300)
        errors[f"forward {np.dtype(dtype).name}"] = float(np.abs(y - expected).max() / scale)
    # Backward (float64 layer) against a central difference of the reference.
    dy = rng.standard_normal(y.shape)
    _, _, tape = layer.forward(x64)
    dx, _ = layer.backward(tape, dy)
    direction_x = rng.standard_normal(x64.shape)
    direction_p = rng.standard_normal(layer.flat_params.shape)
    analytic = np.sum(dx * direction_x) + np.sum(layer.flat_grads * direction_p)
    eps = 1e-6

    def loss(sign):
        shifted = layer.flat_params + sign * eps * direction_p
        params = {}
        offset = 0
        for key, value in layer.params.items():
            params[key] = shifted[offset:offset + value.size].reshape(value.shape)
            offset += value.size
        return np.sum(reference_forward(kind, params, x64 + sign * eps * direction_x, options) * dy)

    numeric = (loss(1) - loss(-1)) / (2 * eps)
    errors["backward float64"] = float(abs(analytic - numeric) / max(abs(numeric), 1e-300))
    return errors


def run(print_fn=print):
    """Check every cell; print a table; return True when all errors are within bounds.

    Bounds: 1e-5 (float32 forward), 1e-12 (float64 forward) and 1e-6 (the
    finite difference's own accuracy) for the backward.
    """
    bounds = {"forward float32": 1e-5, "forward float64": 1e-12, "backward float64": 1e-6}
    print_fn(f"  {'cell':18} {'fwd f32':>9} {'fwd f64':>9} {'bwd f64':>9}")
    ok = True
    for name, kind, options in CHECKS:
        errors = check_cell(name, kind, options)
        passed = all(errors[k] <= bounds[k] for k in bounds)
        ok &= passed
        print_fn(f"  {name:18} {errors['forward float32']:9.1e} {errors['forward float64']:9.1e} "
                 f"{errors['backward float64']:9.1e}  {'ok' if passed else 'FAILED'}")
    return ok

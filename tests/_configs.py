"""Random layer configurations shared by the tests (hypothesis strategies)."""

import numpy as np
from hypothesis import strategies as st

import fastrnn as fr

CELLS = ["rnn-tanh", "rnn-relu", "lstm", "lstm-peephole", "lstm-coupled", "lstm-peephole-coupled",
         "gru", "gru-reset-before"]


@st.composite
def layer_configs(draw, cells=CELLS, max_layers=3):
    """A layer configuration (any cell, variant and option) and one call's shapes."""
    cell = draw(st.sampled_from(cells))
    hidden = draw(st.integers(1, 6))
    config = dict(
        cell=cell, input_size=draw(st.integers(1, 5)), hidden_size=hidden,
        num_layers=draw(st.integers(1, max_layers)), bias=draw(st.booleans()),
        batch_first=draw(st.booleans()), bidirectional=draw(st.booleans()),
        proj_size=draw(st.integers(0, hidden - 1)) if cell.startswith("lstm") else 0,
        steps=draw(st.integers(1, 6)), batch=draw(st.integers(1, 4)),
        unbatched=draw(st.booleans()), hx_given=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)))
    config["use_lengths"] = draw(st.booleans()) and not config["unbatched"]
    return config


def cell_options(cell):
    """Constructor keywords of a cell name from :data:`CELLS`."""
    if cell.startswith("rnn"):
        return {"nonlinearity": cell.split("-")[1]}
    if cell.startswith("lstm"):
        return {"peephole": "peephole" in cell, "coupled": "coupled" in cell}
    return {"reset_after": cell == "gru"}


def build_layer(config, dtype, dropout=0.0):
    options = dict(num_layers=config["num_layers"], bias=config["bias"],
                   batch_first=config["batch_first"], bidirectional=config["bidirectional"],
                   dtype=dtype, seed=config["seed"], dropout=dropout,
                   **cell_options(config["cell"]))
    kind = config["cell"].split("-")[0]
    if kind == "lstm":
        options["proj_size"] = config["proj_size"]
    cls = {"rnn": fr.RNN, "lstm": fr.LSTM, "gru": fr.GRU}[kind]
    return cls(config["input_size"], config["hidden_size"], **options)


def random_call(layer, config, dtype, rng=None, min_length=0):
    """``(x, hx, lengths, dy, dh_n)`` in the layer's user-facing layout.

    ``lengths`` (when the configuration uses them) are drawn from
    ``[min_length, steps]``.
    """
    rng = np.random.default_rng(config["seed"] + 1) if rng is None else rng
    steps, batch, unbatched = config["steps"], config["batch"], config["unbatched"]
    rows = layer.num_layers * layer.num_directions
    out = layer.spec.output_size

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if unbatched:
        lead, state_lead = (steps,), ()
    else:
        lead = (batch, steps) if layer.batch_first else (steps, batch)
        state_lead = (batch,)
    shapes = [(rows, *state_lead, out)]
    if layer.spec.has_cell_state:
        shapes.append((rows, *state_lead, layer.hidden_size))
    pack = tuple if layer.spec.has_cell_state else (lambda parts: parts[0])
    x = normal(*lead, layer.input_size)
    hx = pack([normal(*s) for s in shapes]) if config["hx_given"] else None
    dh_n = pack([normal(*s) for s in shapes])
    lengths = (rng.integers(min_length, steps + 1, size=batch) if config["use_lengths"]
               else None)
    dy = normal(*lead, layer.num_directions * out)
    return x, hx, lengths, dy, dh_n


def to_time_major(layer, config, array):
    """A user-layout array as (T, B, F)."""
    if config["unbatched"]:
        return array[:, None, :]
    return array.transpose(1, 0, 2) if layer.batch_first else array


def states_batched(layer, config, state):
    """User-layout state(s) as a tuple of (L*D, B, F) arrays."""
    parts = state if isinstance(state, tuple) else (state,)
    return tuple(p[:, None, :] if config["unbatched"] else p for p in parts)

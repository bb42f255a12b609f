"""Sequence classification with the classic LSTM "sentiment" architecture.

    token ids -> Embedding -> LSTM -> mean over the valid time steps -> Linear(1) -> logit

The data are made up in code so the example needs no download: sequences of
variable length over a small vocabulary in which token ``+`` is a "positive"
marker, token ``-`` a "negative" one and every other token a distractor. The
label is 1 when ``+`` occurs more often than ``-`` anywhere in the sequence,
else 0 (the two counts always differ). A sentiment model has to do the same:
weigh evidence spread along the whole review.

What the example shows:

* variable-length sequences padded into one time-major ``(T, B)`` array with
  ``fastrnn.data.pad_sequences``, whose ``lengths`` go to the LSTM's
  ``lengths=`` so each sequence's recurrence stops at its own end;
* the explicit-backward style: the mean pooling between the recurrent encoder
  and the read-out is not a library layer, so we write its forward and its
  backward by hand (three lines each) and chain the gradients ourselves;
* a binary logistic loss (``fastrnn.losses.binary_logistic``) and Adam.

Run it from the repository root::

    python examples/sequence_classification.py          # ~1 minute, > 90% test accuracy
    python examples/sequence_classification.py --tiny   # a few seconds (CI)
"""

import argparse
import sys
import time

import numpy as np

import fastrnn as fr
from fastrnn.data import pad_sequences
from fastrnn.losses import binary_logistic
from fastrnn.training import clip_grad_norm
from fastrnn.training.optimizers import Adam

PAD, POSITIVE, NEGATIVE = 0, 1, 2          # token ids; 3 .. vocab-1 are distractors
SYMBOLS = {PAD: ".", POSITIVE: "+", NEGATIVE: "-"}


# ----------------------------------------------------------------------- data
def make_dataset(count, vocab, min_len, max_len, max_markers, rng):
    """``count`` sequences (lists of token ids) and their labels (float 0/1).

    Each sequence gets ``p`` positive and ``n`` negative markers, ``p != n``,
    both in ``[0, max_markers]``, at random places among distractor tokens.
    """
    sequences, labels = [], []
    for _ in range(count):
        while True:
            p, n = rng.integers(0, max_markers + 1, size=2)
            if p != n:
                break
        length = int(rng.integers(max(min_len, p + n), max_len + 1))
        tokens = rng.integers(3, vocab, size=length)           # distractors
        places = rng.permutation(length)[:p + n]               # where the markers go
        tokens[places[:p]] = POSITIVE
        tokens[places[p:]] = NEGATIVE
        sequences.append(tokens)
        labels.append(float(p > n))
    return sequences, np.array(labels, np.float32)


def show(tokens):
    """A sequence as text: ``+``/``-`` for the markers, letters for distractors."""
    return "".join(SYMBOLS.get(int(t), chr(ord("a") + int(t) - 3)) for t in tokens)


# ------------------------------------------------------- mean pooling, by hand
def mean_pool_forward(h, lengths):
    """Average ``h`` (T, B, H) over each sequence's first ``lengths[b]`` steps.

    Returns the pooled (B, H) array and what the backward needs.
    """
    steps = h.shape[0]
    mask = (np.arange(steps)[:, None] < lengths[None, :]).astype(h.dtype)   # (T, B)
    scale = mask / lengths[None, :].astype(h.dtype)                         # 1/len on valid steps
    pooled = np.einsum("tb,tbh->bh", scale, h)
    return pooled, scale


def mean_pool_backward(scale, dpooled):
    """``d pooled / d h``: each valid step receives ``dpooled / length``; padding gets 0."""
    return scale[:, :, None] * dpooled[None, :, :]


# ------------------------------------------------------------------- the model
class SentimentLSTM:
    """Embedding -> LSTM (the encoder, one ``Sequential``), mean pooling, Linear head.

    The pooling sits between two library modules, so there are two of them,
    each with its own flat parameter buffer (and its own optimizer below).
    """

    def __init__(self, vocab, embed, hidden, seed):
        self.encoder = fr.Sequential([fr.Embedding(vocab, embed, seed=seed),
                                      fr.LSTM(embed, hidden, seed=seed + 1)])
        self.head = fr.Linear(hidden, 1, seed=seed + 2)

    def logits(self, tokens, lengths):
        """Inference: one logit per sequence, shape (B,)."""
        h, _ = self.encoder(tokens, lengths=lengths)
        pooled, _ = mean_pool_forward(h, lengths)
        return self.head(pooled)[:, 0]

    def loss_and_gradients(self, tokens, lengths, labels):
        """Forward, loss and the whole backward; gradients land in ``flat_grads``."""
        self.encoder.zero_grad()
        self.head.zero_grad()
        # forward, keeping every tape
        h, _, encoder_tape = self.encoder.forward(tokens, lengths=lengths)   # (T, B, H)
        pooled, pool_tape = mean_pool_forward(h, lengths)                   # (B, H)
        logits, head_tape = self.head.forward(pooled)                       # (B, 1)
        loss, dlogits = binary_logistic(logits[:, 0], labels)              # mean over batch
        # backward, in the reverse order
        dpooled = self.head.backward(head_tape, dlogits[:, None])           # (B, H)
        dh = mean_pool_backward(pool_tape, dpooled)                         # (T, B, H)
        self.encoder.backward(encoder_tape, dh)   # dx is None: the input is token ids
        return loss, logits[:, 0]


def accuracy(model, sequences, labels, batch=256):
    correct = 0
    for start in range(0, len(sequences), batch):
        tokens, lengths = pad_sequences(sequences[start:start + batch], value=PAD)
        predicted = model.logits(tokens, lengths) > 0
        correct += np.sum(predicted == (labels[start:start + batch] > 0.5))
    return correct / len(sequences)


# ----------------------------------------------------------------------- main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=4000, help="training sequences")
    parser.add_argument("--test", type=int, default=1000, help="test sequences")
    parser.add_argument("--vocab", type=int, default=20, help="tokens, markers included")
    parser.add_argument("--min-len", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--max-markers", type=int, default=5)
    parser.add_argument("--embed", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--clip", type=float, default=5.0, help="global gradient norm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds at tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.train, args.test, args.max_len, args.hidden, args.epochs = 128, 64, 20, 8, 2
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = make_dataset(args.train, args.vocab, args.min_len, args.max_len,
                                    args.max_markers, rng)
    test_x, test_y = make_dataset(args.test, args.vocab, args.min_len, args.max_len,
                                  args.max_markers, rng)
    print(f"data: {args.train} training and {args.test} test sequences of {args.min_len}-"
          f"{args.max_len} tokens; label 1 when '+' occurs more often than '-' "
          f"(positives: {train_y.mean():.0%} of training)")
    print(f"  e.g. {show(train_x[0])}  -> {int(train_y[0])}")

    model = SentimentLSTM(args.vocab, args.embed, args.hidden, args.seed)
    optimizers = [Adam(model.encoder, lr=args.lr), Adam(model.head, lr=args.lr)]
    print(f"model: Embedding({args.vocab}, {args.embed}) -> LSTM({args.embed}, {args.hidden}) "
          f"-> mean pooling -> Linear({args.hidden}, 1); "
          f"{model.encoder.flat_params.size + model.head.flat_params.size:,} parameters")

    print("epoch  train loss  train acc  test acc")
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(args.train)
        total = 0.0
        for start in range(0, args.train, args.batch):
            chosen = order[start:start + args.batch]
            # pad this minibatch to its own longest sequence; lengths stop each recurrence
            tokens, lengths = pad_sequences([train_x[i] for i in chosen], value=PAD)
            loss, _ = model.loss_and_gradients(tokens, lengths, train_y[chosen])
            # one global norm over both modules' gradients, then one step each
            clip_grad_norm([model.encoder.flat_grads, model.head.flat_grads], args.clip)
            for optimizer in optimizers:
                optimizer.step()
            total += loss * len(chosen)
        print(f"{epoch:5d}  {total / args.train:10.4f}  {accuracy(model, train_x, train_y):9.3f}"
              f"  {accuracy(model, test_x, test_y):8.3f}", flush=True)
    seconds = time.perf_counter() - started

    test_accuracy = accuracy(model, test_x, test_y)
    print(f"trained {args.epochs} epochs in {seconds:.1f} s")
    print(f"final: train accuracy {accuracy(model, train_x, train_y):.3f}, "
          f"test accuracy {test_accuracy:.3f} "
          f"(majority class: {max(test_y.mean(), 1 - test_y.mean()):.3f})")
    tokens, lengths = pad_sequences(test_x[:3], value=PAD)
    probabilities = 1 / (1 + np.exp(-model.logits(tokens, lengths)))
    for sequence, label, probability in zip(test_x[:3], test_y[:3], probabilities):
        print(f"  {show(sequence):<{args.max_len}}  label {int(label)}  "
              f"P(positive) {probability:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

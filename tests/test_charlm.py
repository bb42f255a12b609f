"""The character language model, its checkpoints and the command line that runs it."""

import json

import numpy as np
import pytest

from fastrnn import io
from fastrnn.__main__ import main
from fastrnn.charlm import CharLM, Config, Trainer, TrainingDiverged
from fastrnn.data.corpus import stdlib_text

TEXT = stdlib_text(4000)


def _config(**options):
    return Config(**dict(dict(hidden=16, batch=4, steps=8, seed=3), **options))


# --------------------------------------------------------------------- io files
def test_arrays_and_metadata_round_trip(tmp_path):
    path = tmp_path / "file.npz"
    io.save_arrays(path, {"a": np.arange(3.0), "b": np.eye(2, dtype=np.float32)},
                   {"note": "hi", "n": [1, 2]}, "model")
    arrays, metadata = io.load_arrays(path, "model")
    assert np.array_equal(arrays["a"], np.arange(3.0)) and arrays["b"].dtype == np.float32
    assert metadata == {"note": "hi", "n": [1, 2], "format": "fastrnn", "version": 1,
                        "kind": "model"}


def test_a_write_that_dies_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    io.save_arrays(path, {"a": np.zeros(3)}, {"step": 1}, "checkpoint")

    def dies(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(np, "savez", dies)
    with pytest.raises(KeyboardInterrupt):
        io.save_arrays(path, {"a": np.ones(3)}, {"step": 2}, "checkpoint")
    monkeypatch.undo()
    arrays, metadata = io.load_arrays(path, "checkpoint")
    assert metadata["step"] == 1 and not arrays["a"].any()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_files_it_does_not_understand_are_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(2))
    with pytest.raises(ValueError, match=r"is not a fastrnn file: it has no __metadata__.json"):
        io.load_arrays(plain, "model")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"is not a fastrnn file \(.npz archive\)"):
        io.load_arrays(text, "model")
    with pytest.raises(FileNotFoundError, match=r"no such file"):
        io.load_arrays(tmp_path / "missing.npz", "model")
    path = tmp_path / "model.npz"
    io.save_arrays(path, {}, {}, "model")
    with pytest.raises(ValueError, match=r"holds a 'model', expected a 'checkpoint'"):
        io.load_arrays(path, "checkpoint")
    future = tmp_path / "future.npz"
    header = json.dumps({"format": "fastrnn", "version": 99, "kind": "model"}).encode()
    np.savez(future, **{"__metadata__.json": np.frombuffer(header, np.uint8)})
    with pytest.raises(ValueError, match=r"has format version 99; this fastrnn reads versions "
                                         r"up to 1"):
        io.load_arrays(future, "model")
    with pytest.raises(TypeError, match=r"arrays\['o'\] must be a numeric array"):
        io.save_arrays(path, {"o": np.array([object()])}, {}, "model")


# ---------------------------------------------------------------------- trainer
@pytest.mark.parametrize("sampling", ["random", "sequential"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_continues_bit_for_bit(tmp_path, sampling, optimizer):
    config = _config(sampling=sampling, optimizer=optimizer,
                     lr=1.0 if optimizer == "sgd" else 0.01)
    whole = Trainer(TEXT, config, progress=None)
    whole.train(epochs=3)
    path = tmp_path / "lm.npz"
    first = Trainer(TEXT, config, checkpoint=path, progress=None)
    first.train(epochs=3, max_steps=5)           # stops inside the first epoch
    assert first.step == 5 and first.batch_index == 5
    second = Trainer(TEXT, config, checkpoint=path, progress=None)
    second.resume()
    second.train(epochs=3, max_steps=40)          # stops inside a later epoch
    third = Trainer(TEXT, config, checkpoint=path, progress=None)
    third.resume()
    third.train(epochs=3)
    assert third.step == whole.step
    assert np.array_equal(third.lm.model.flat_params, whole.lm.model.flat_params)
    assert [e["perplexity"] for e in third.history] == [e["perplexity"] for e in whole.history]


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    path = tmp_path / "lm.npz"
    trainer = Trainer(TEXT, _config(), checkpoint=path, progress=None)
    trainer.train(epochs=1)
    saved_step = trainer.step
    saved = path.read_bytes()
    trainer.lm.model.params["0.weight_hh_l0"][0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=rf"the loss is nan at step {saved_step + 1} "
                                               rf"\(epoch 2, batch 1\); the last checkpoint "
                                               rf"\(step {saved_step}\) is kept"):
        trainer.train(epochs=2)
    assert path.read_bytes() == saved


def test_a_non_finite_gradient_stops_training(tmp_path):
    trainer = Trainer(TEXT, _config(), progress=None)
    real_loss = trainer.lm.loss

    def infinite_gradient(logits, targets):
        loss, grad = real_loss(logits, targets)
        grad[0, 0, 0] = np.inf
        return loss, grad

    trainer.engine.loss_fn = infinite_gradient
    with pytest.raises(TrainingDiverged, match=r"a gradient is not finite at step 1 "
                                               r"\(epoch 1, batch 1\); no checkpoint"):
        trainer.train(epochs=1)


def test_resume_refuses_another_text_or_configuration(tmp_path):
    path = tmp_path / "lm.npz"
    Trainer(TEXT, _config(), checkpoint=path, progress=None).train(epochs=1, max_steps=1)
    with pytest.raises(ValueError, match=r"was trained on another text"):
        Trainer(TEXT[:-10], _config(), checkpoint=path, progress=None).resume()
    with pytest.raises(ValueError, match=r"has the configuration"):
        Trainer(TEXT, _config(hidden=8), checkpoint=path, progress=None).resume()


def test_learning_lowers_perplexity_and_generation_is_deterministic(tmp_path):
    trainer = Trainer(TEXT, _config(hidden=32), eval_text=TEXT[:500] + "\u00e9\u00e9",
                      progress=None)
    metrics = trainer.train(epochs=4)
    curve = [entry["perplexity"] for entry in metrics["epochs"]]
    assert curve[-1] < curve[0] < len(trainer.lm.vocab)
    assert metrics["vocab_size"] == len(set(TEXT)) + 1           # every character and <unk>
    assert 1 < metrics["eval_perplexity"] < len(trainer.lm.vocab)
    assert set(metrics["epochs"][0]) == {"epoch", "perplexity", "tokens_per_s", "seconds",
                                         "eval_perplexity"}
    text = trainer.lm.generate("the ", 30)
    assert text.startswith("the ") and len(text) == 34
    assert text == trainer.lm.generate("the ", 30)
    sampled = trainer.lm.generate("the ", 30, temperature=1.0, seed=1)
    assert sampled == trainer.lm.generate("the ", 30, temperature=1.0, seed=1)


@pytest.mark.parametrize("options, message", [
    (dict(cell="lstmx"), r"cell must be one of 'gru', 'lstm', 'rnn', got 'lstmx'"),
    (dict(hidden=0), r"hidden must be an int >= 1, got 0"),
    (dict(lr=-1.0), r"lr must be positive and finite, got -1.0"),
    (dict(clip=-1.0), r"clip must be >= 0 \(0: no clipping\), got -1.0"),
    (dict(sampling="shuffled"), r"sampling must be one of"),
])
def test_bad_configuration(options, message):
    with pytest.raises(ValueError, match=message):
        Config(**options)


# ------------------------------------------------------------------ command line
def test_train_and_generate_from_the_command_line(tmp_path, capsys):
    text, held_out = tmp_path / "train.txt", tmp_path / "eval.txt"
    text.write_text(TEXT)
    held_out.write_text(TEXT[:300])
    metrics, checkpoint = tmp_path / "metrics.json", tmp_path / "lm.npz"
    common = ["train", "--text", str(text), "--hidden", "16", "--batch", "4", "--steps", "8",
              "--checkpoint", str(checkpoint), "--quiet"]
    assert main(common + ["--epochs", "1", "--eval-text", str(held_out),
                          "--metrics", str(metrics)]) == 0
    report = json.loads(metrics.read_text())
    assert {"vocab_size", "tokens_per_s", "epochs", "eval_perplexity"} <= set(report)
    assert main(common + ["--epochs", "2", "--resume"]) == 0
    assert "epoch 2: perplexity" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", str(checkpoint), "--prefix", "the",
                 "--length", "12"]) == 0
    assert capsys.readouterr().out.startswith("the")
    assert CharLM.load(checkpoint).config == _config(seed=0)


def test_command_line_errors(tmp_path):
    with pytest.raises(SystemExit, match=r"--text: cannot read"):
        main(["train", "--text", str(tmp_path / "missing.txt")])
    (tmp_path / "t.txt").write_text(TEXT)
    with pytest.raises(SystemExit, match=r"--resume needs --checkpoint PATH"):
        main(["train", "--text", str(tmp_path / "t.txt"), "--resume"])


def test_demo_runs_and_generates(capsys):
    assert main(["demo", "--seconds", "1", "--length", "10", "--prefix", "the "]) == 0
    out = capsys.readouterr().out
    assert "corpus: docstrings of" in out and "\n> the " in out

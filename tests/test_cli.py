"""The command line and import-time promises."""

import subprocess
import sys

from fastrnn import selfcheck
from fastrnn.__main__ import main


def test_info_prints_everything_and_passes(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for needle in ("fastrnn 0.", "backend: cpu", "CUDA: ", "numba threads: ", "BLAS (kernels)",
                   "self-check passed"):
        assert needle in out
    assert out.count(" ok") == len(selfcheck.CHECKS)


def test_selfcheck_fails_when_kernel_and_reference_disagree(monkeypatch):
    original = selfcheck.reference_forward

    def wrong_reference(kind, params, x, options):  # every RNN checked as if it were ReLU
        return original(kind, params, x, dict(options, nonlinearity="relu"))

    monkeypatch.setattr(selfcheck, "reference_forward", wrong_reference)
    lines = []
    assert not selfcheck.run(lines.append)
    assert [line.split()[0:2] for line in lines if "FAILED" in line] == [["RNN", "tanh"]]


def test_import_compiles_nothing_and_probes_no_gpu():
    code = ("import sys, fastrnn; "
            "assert 'numba' not in sys.modules, 'numba imported'; "
            "assert not any(m.startswith('fastrnn.kernels.cpu.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)

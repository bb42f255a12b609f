"""Every CUDA kernel compiles to PTX for real GPUs: sm_80 and sm_90, float32 and float64.

numba's simulator runs kernels as Python and accepts code that a GPU compiler
rejects, so this compiles each registered kernel, with the signature its
launches use (checked by ``test_cuda.py``), through NVVM. No GPU is needed,
only numba-cuda's toolchain; it runs in a subprocess because this test
session has the simulator on.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install "
                                         "'fastrnn[cuda]')")

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cc", ["8,0", "9,0"])
def test_every_kernel_compiles_to_ptx(cc):
    env = {name: value for name, value in os.environ.items() if name != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "_cuda_ptx.py"), cc], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if report["status"] == "no-toolchain":
        pytest.skip(report["reason"])
    assert not report["failed"], "\n".join(report["failed"])
    kernels = {entry.rsplit(" ", 1)[0] for entry in report["compiled"]}
    for module in ("rnn", "gru", "lstm", "persistent", "_common", "_gemm"):
        assert any(f"fastrnn.kernels.cuda.{module}." in name for name in kernels), module
    assert len(report["compiled"]) >= 2 * 20
    assert not report["float64_in_float32"], (
        f"float32 kernels computing in float64: {report['float64_in_float32']}")
    assert not report["shared_over_limit"], (
        f"static shared memory over 48 KiB: {report['shared_over_limit']}")
    assert not report["unresolved_calls"], (
        f"calls to functions missing from the PTX: {report['unresolved_calls']}")

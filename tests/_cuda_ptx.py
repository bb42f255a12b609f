"""Compile every CUDA kernel of fastrnn to PTX for one compute capability.

Run as a script (``python tests/_cuda_ptx.py 8,0``) by ``test_cuda_ptx.py``, in
a process where numba's CUDA simulator is off; needs numba-cuda's toolchain
(NVVM), not a GPU. Prints one JSON object: ``status`` ("ok" or "no-toolchain"),
and for "ok" the kernels compiled, those that failed (with the error), the
float32 kernels whose PTX holds float64 arithmetic, those whose static shared
arrays pass 48 KiB, and calls to functions the PTX does not define.
"""

import json
import os
import re
import sys
import types

#: Kernels meant to compute in float64 whatever the float type: the error
#: guard's norms (the per-step kernel, and the persistent backward kernels
#: that run only with the guard on) and clip_grad_norm's partial norms (as on
#: the CPU).
FLOAT64_BY_DESIGN = {"fastrnn.kernels.cuda._common._guard",
                     "fastrnn.kernels.cuda.persistent._rnn_backward_guarded",
                     "fastrnn.kernels.cuda.persistent._gru_backward_guarded",
                     "fastrnn.kernels.cuda.persistent._lstm_backward_guarded",
                     "fastrnn.kernels.cuda.clip._partial_norms"}
#: The most static shared memory a thread block may have (bytes).
STATIC_SHARED_LIMIT = 48 * 1024


def _toolchain_missing(cc):
    """The reason NVVM is unusable, or None when a trivial kernel compiles."""
    from numba import cuda
    from numba.cuda.cudadrv.error import NvvmSupportError

    def probe(out):
        out[0] = 1.0
    try:
        cuda.compile_ptx(probe, "void(float32[::1])", cc=cc)
    except NvvmSupportError as exc:
        return f"numba-cuda's NVVM is not usable: {exc}"
    return None


def main(cc):
    assert not os.environ.get("NUMBA_ENABLE_CUDASIM"), "run without the simulator"
    reason = _toolchain_missing(cc)
    if reason:
        print(json.dumps(dict(status="no-toolchain", reason=reason)))
        return
    # A kernel calling a device function makes numba-cuda compile that device
    # function for "the current device", which asks the driver for its compute
    # capability even inside compile_ptx. There is no driver without a GPU, so
    # answer with the capability being compiled for (one process per capability).
    from numba import cuda
    from numba.cuda import dispatcher
    assert hasattr(dispatcher, "get_current_device"), "numba-cuda changed: update this script"
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)

    from fastrnn.kernels.cuda import _gemm, _jit
    for tile in sorted({_gemm.TILE, 4}):
        for float_type in _jit.FLOAT_TYPES:
            _gemm.gemm_kernel(tile, float_type)
    compiled, failed, wide, oversized, unresolved = [], [], [], [], []
    for name, (function, template, float_types) in sorted(_jit.KERNELS.items()):
        for float_type in float_types:
            try:
                ptx, _ = cuda.compile_ptx(function, _jit.signature(template, float_type), cc=cc)
            except Exception as exc:  # reported, and failed, by the test
                failed.append(f"{name} {float_type}: {type(exc).__name__}: {exc}")
                continue
            target = ".target sm_%d%d" % cc
            if target not in ptx:
                failed.append(f"{name} {float_type}: PTX without '{target}'")
                continue
            compiled.append(f"{name} {float_type}")
            # Static shared arrays are declared in the PTX; a GPU refuses a kernel
            # whose total passes the limit (compile_ptx does not check it).
            shared = sum(int(size) for size in re.findall(r"\.shared\b[^;\[]*\[(\d+)\]", ptx))
            if shared > STATIC_SHARED_LIMIT:
                oversized.append(f"{name} {float_type}: {shared} bytes")
            # A call into a function that is not in the module (a numba helper
            # that exists only on the CPU, say) would fail to link on a GPU.
            for extern in re.findall(r"^\s*\.extern\s+\.func\b.*$", ptx, re.MULTILINE):
                unresolved.append(f"{name} {float_type}: {extern.strip()}")
            if (float_type == "float32" and name not in FLOAT64_BY_DESIGN
                    and re.search(r"\.f64\b", ptx)):
                wide.append(name)
    print(json.dumps(dict(status="ok", compiled=compiled, failed=failed, float64_in_float32=wide,
                          shared_over_limit=oversized, unresolved_calls=unresolved)))


if __name__ == "__main__":
    main(tuple(int(part) for part in sys.argv[1].split(",")))

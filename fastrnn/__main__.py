"""Command line: ``python -m fastrnn info``."""

import argparse
import platform
import sys


def info():
    """Print versions, backend, threads, BLAS and CUDA status, then run the self-check."""
    import numba
    import numpy as np
    import scipy

    import fastrnn
    from fastrnn import selfcheck
    from fastrnn.device import cuda_status, resolve_device

    print(f"fastrnn {fastrnn.__version__} (Python {platform.python_version()}, "
          f"{platform.machine()})")
    print(f"numpy {np.__version__}, numba {numba.__version__}, scipy {scipy.__version__}")
    print(f"backend: {resolve_device('auto')} (device='auto')")
    usable, reason = cuda_status()
    print(f"CUDA: {'available' if usable else 'not available'} ({reason})")
    from fastrnn import config
    from fastrnn.kernels.cpu._threads import use_parallel_scan
    threaded = use_parallel_scan(config.PARALLEL_MIN_WORK, config.PARALLEL_MIN_BATCH)
    scans = f"on from {config.PARALLEL_MIN_WORK} multiply-adds a step" if threaded else "off"
    print(f"numba threads: {numba.get_num_threads()} (threading layer: "
          f"{numba.config.THREADING_LAYER}; threaded LSTM scans: {scans})")
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels call, loaded now)
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                role = "kernels" if "scipy.libs" in pool.get("filepath", "") else "numpy"
                print(f"BLAS ({role}): {pool.get('internal_api')} {pool.get('version')} "
                      f"({pool.get('architecture')}), {pool.get('num_threads')} threads, "
                      f"{pool.get('filepath')}")
    except ImportError:
        print("BLAS: unknown (threadpoolctl not installed)")
    print("self-check: errors against a float64 NumPy reference (relative, max norm)")
    ok = selfcheck.run()
    print("self-check passed" if ok else "self-check FAILED")
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastrnn",
                                     description="fastrnn command line")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions, threads, BLAS, CUDA, and a self-check")
    args = parser.parse_args(argv)
    if args.command == "info":
        return info()
    return 2


if __name__ == "__main__":
    sys.exit(main())

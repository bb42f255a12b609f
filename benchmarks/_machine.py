"""What the comparison scripts say about the machine they ran on."""


def blas_description():
    """The BLAS libraries loaded in this process, their versions, kernels and threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"x{i.get('num_threads')} ({i.get('prefix')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")

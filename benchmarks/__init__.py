"""fastrnn's benchmarks: the asv suite (``bench_*.py``) and comparison scripts."""

"""Skip collecting (doctests of) modules whose optional dependency is not installed."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("sklearn") is None:
    collect_ignore.append("fastrnn/sklearn.py")

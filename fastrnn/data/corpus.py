"""A default text corpus that needs no download: the installed standard library's docstrings.

Used by ``python -m fastrnn demo``. Nothing is copied into the repository: the
text is gathered at run time from the docstrings of a fixed list of standard
modules and their public classes, functions and methods, in a fixed order.
"""

import importlib
import inspect
import re

#: Standard modules whose documentation makes up :func:`stdlib_text`.
MODULES = ("argparse", "bisect", "calendar", "collections", "contextlib", "csv", "dataclasses",
           "datetime", "decimal", "difflib", "enum", "fractions", "functools", "heapq", "inspect",
           "itertools", "json", "logging", "pathlib", "pprint", "queue", "random", "shutil",
           "statistics", "string", "subprocess", "tarfile", "textwrap", "threading",
           "unittest", "zipfile")


def _docstrings(module):
    yield module.__doc__
    for name in sorted(vars(module)):
        value = vars(module)[name]
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            yield value.__doc__
        if inspect.isclass(value):
            for member in sorted(vars(value)):
                attribute = vars(value)[member]
                if not member.startswith("_") and inspect.isfunction(attribute):
                    yield attribute.__doc__


def stdlib_text(max_chars=None, letters_only=True):
    """Docstrings of the standard library, concatenated.

    Parameters
    ----------
    max_chars : int, optional
        Keep at most this many characters.
    letters_only : bool, default True
        d2l's preprocessing of *The Time Machine*: every run of characters that
        are not ASCII letters becomes one space, and letters are lowercased
        (a 27-character alphabet).

    Returns
    -------
    str
    """
    parts = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        parts.extend(doc for doc in _docstrings(module) if doc)
    text = "\n".join(parts)
    if letters_only:
        text = re.sub("[^A-Za-z]+", " ", text).lower().strip()
    return text[:max_chars] if max_chars else text

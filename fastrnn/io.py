"""Files of arrays and metadata: one ``.npz`` (no pickle), written atomically.

A fastrnn file is a NumPy ``.npz`` archive whose arrays are plain numeric
arrays and whose metadata is JSON, stored in the same archive as the UTF-8
bytes of the entry ``__metadata__.json``. One file, so one rename replaces
it: :func:`save_arrays` writes a temporary file beside the target, flushes it
to disk and renames it over the target, so a process killed mid-write leaves
the previous file intact. Loading never unpickles (``allow_pickle=False``).

The metadata always holds ``{"format": "fastrnn", "version": 1, "kind": ...}``;
:func:`load_arrays` refuses a file without them, of another kind, or of a
newer version, with a clear error.
"""

import json
import os
import pathlib
import tempfile

import numpy as np

from ._validation import describe

FORMAT = "fastrnn"
VERSION = 1
_METADATA = "__metadata__.json"


def save_arrays(path, arrays, metadata, kind):
    """Write ``arrays`` and JSON ``metadata`` to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)place; written exactly there, no suffix added.
    arrays : dict of str to ndarray
        Numeric arrays (object arrays are refused: they would need pickle).
    metadata : dict
        JSON-serialisable; ``format``, ``version`` and ``kind`` are added.
    kind : str
        What the file holds (``"model"``, ``"checkpoint"``...).
    """
    path = pathlib.Path(path)
    for name, array in arrays.items():
        array = np.asarray(array)
        if name == _METADATA or array.dtype.kind not in "biuf":
            raise TypeError(f"arrays[{name!r}] must be a numeric array, got {describe(array)}")
    header = dict(metadata, format=FORMAT, version=VERSION, kind=kind)
    encoded = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), np.uint8)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp",
                                             dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **{_METADATA: encoded}, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def load_arrays(path, kind):
    """Read a file written by :func:`save_arrays`; return ``(arrays, metadata)``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a fastrnn ``.npz`` of ``kind``, or is of a newer
        format version than this fastrnn reads.
    """
    path = pathlib.Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        if not path.exists():
            raise FileNotFoundError(f"no such file: {str(path)!r}") from None
        raise ValueError(f"{str(path)!r} is not a fastrnn file (.npz archive): {error}") from None
    with archive:
        if not hasattr(archive, "files") or _METADATA not in archive.files:
            raise ValueError(f"{str(path)!r} is not a fastrnn file: it has no {_METADATA}")
        metadata = json.loads(archive[_METADATA].tobytes().decode("utf-8"))
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a fastrnn file (format "
                             f"{metadata.get('format')!r})")
        if not isinstance(metadata.get("version"), int) or metadata["version"] > VERSION:
            raise ValueError(f"{str(path)!r} has format version {metadata.get('version')!r}; "
                             f"this fastrnn reads versions up to {VERSION}: upgrade fastrnn")
        if metadata.get("kind") != kind:
            raise ValueError(f"{str(path)!r} holds a {metadata.get('kind')!r}, "
                             f"expected a {kind!r}")
        arrays = {name: archive[name] for name in archive.files if name != _METADATA}
    return arrays, metadata

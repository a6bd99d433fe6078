"""Checkpoints: weights, optimizer state, position in training and the full configuration
in one .npz file. No pickle anywhere: arrays are plain numeric arrays and the metadata is
JSON stored as a uint8 array; loading uses allow_pickle=False and refuses anything else.
Writes go to a temporary file in the same directory, then os.replace, so a crash or a full
disk never leaves a half-written checkpoint (a failed write raises CheckpointError and
removes the temporary file).
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from fastmlp.files import publish

FORMAT = "fastmlp-checkpoint-1"


class CheckpointError(Exception):
    """A file that is not a usable checkpoint, or one that cannot be written; one line,
    naming the file."""


def save(path, arrays, meta):
    """Write `arrays` (name -> ndarray) and `meta` (JSON-able dict) to `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    payload = dict(arrays)
    payload["meta"] = np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), dtype=np.uint8)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz", dir=directory)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write the checkpoint: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):  # a full disk, a quota: the previous checkpoint is untouched
            kept = " (the previous checkpoint there is unchanged)" if os.path.exists(path) else ""
            raise CheckpointError(f"{path}: cannot write the checkpoint: {e.strerror or e}{kept}") from None
        raise
    return path


def load(path):
    """(meta, arrays) from a checkpoint; raises CheckpointError for anything else."""
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: not a fastmlp checkpoint (a single array, not an .npz archive)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a readable fastmlp checkpoint ({reason})") from None
    if "meta" not in arrays or arrays["meta"].dtype != np.uint8:
        raise CheckpointError(f"{path}: not a fastmlp checkpoint (no metadata)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: corrupt checkpoint metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a fastmlp checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    return meta, arrays

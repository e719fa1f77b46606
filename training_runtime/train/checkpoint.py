"""Checkpoints: written atomically, loaded with `weights_only=True`.

A checkpoint is a dict of tensors and plain Python values only, so `torch.load(weights_only=True)`
can read it without unpickling arbitrary objects. That is why RNG states are stored as tensors and
lists rather than as the tuples/ndarrays numpy and `random` hand out (see `capture_rng`).
The DataLoader order needs no saved state: each epoch's shuffle comes from a generator seeded by
(seed, epoch), and a mid-epoch checkpoint records how many batches of the epoch were done.

Files in `checkpoint_dir`: `last.pt` (the whole training state, rewritten every epoch and at every
stop) and `best.pt` (the weights with the best validation metric so far).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path | str, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically: temp file in the same folder, fsync, os.replace.

    A crash mid-write leaves the previous file intact; the temp file (".<name>.*.tmp", never
    "*.pt") is removed on error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable where the OS allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`, read with `weights_only=True`."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def capture_rng(include_cuda: bool) -> dict[str, Any]:
    """The torch (CPU and, if asked, CUDA), numpy and `random` RNG states as tensors and lists."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if include_cuda else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states `capture_rng` took."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]),
                     python_state["gauss_next"]))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)

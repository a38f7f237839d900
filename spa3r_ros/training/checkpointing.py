# Copyright 2026 The spa3r_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Training checkpoints: atomic folders, RNG capture, retention of the last K and the best.

Layout of a run folder::

    RUN/checkpoints/step_00000100/state.pt     model (trainable part), optimiser, scheduler,
                                               grad scaler, RNG states, data position, step
    RUN/checkpoints/step_00000100/config.yaml  the resolved TrainConfig
    RUN/checkpoints/best.json                  {"step": ..., "heldout_loss": ...}

A checkpoint folder is assembled under a hidden temporary name in the same parent (files written,
flushed and fsynced), then renamed into place, and the parent directory fsynced: a crash at any
point leaves either no new folder or a complete one, never a partial checkpoint that loads.
Temporary folders left by a crash are ignored by :func:`list_checkpoints` and removed by the next
successful save.
"""

import json
import logging
import os
from pathlib import Path
import random
import re
import shutil
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = 'checkpoints'
STATE_FILE = 'state.pt'
CONFIG_FILE = 'config.yaml'
BEST_FILE = 'best.json'
FORMAT_VERSION = 1
_NAME = re.compile(r'^step_(\d{8})$')
_TMP_PREFIX = '.tmp-'


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` optimiser steps."""
    return f'step_{step:08d}'


def capture_rng_state() -> dict[str, Any]:
    """Every random state a training step reads: Python, NumPy, torch CPU and CUDA."""
    # Only tensors, numbers, strings and tuples, so checkpoints load with weights_only=True
    # (no pickle code runs on reading): NumPy's key array travels as a tensor.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only when CUDA is there)."""
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, write) -> None:
    with open(path, 'wb') as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    run_dir: str | os.PathLike, step: int, state: dict[str, Any], config_yaml: str
) -> Path:
    """Write one checkpoint folder atomically.

    Args:
        run_dir: the run folder (``RUN``).
        step: optimiser steps done; names the folder.
        state: what :func:`load_checkpoint` returns (tensors, plain Python, NumPy arrays).
        config_yaml: the resolved config as YAML text.

    Returns:
        The checkpoint folder.
    """
    parent = Path(run_dir) / CHECKPOINT_DIR
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / checkpoint_name(step)
    tmp = parent / f'{_TMP_PREFIX}{checkpoint_name(step)}-{os.getpid()}'
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    payload = {'format_version': FORMAT_VERSION, 'step': step, **state}
    _write_file(tmp / STATE_FILE, lambda f: torch.save(payload, f))
    _write_file(tmp / CONFIG_FILE, lambda f: f.write(config_yaml.encode()))
    _fsync_dir(tmp)
    if final.exists():
        # Rewriting the same step (a resumed run saving again): move the old one aside first, so
        # that at every instant one complete folder exists under a name the loader accepts or
        # ignores.
        old = parent / f'{_TMP_PREFIX}old-{checkpoint_name(step)}-{os.getpid()}'
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    _fsync_dir(parent)
    for stale in parent.glob(f'{_TMP_PREFIX}*'):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoint folders of a run, oldest first, as ``(step, folder)``."""
    parent = Path(run_dir) / CHECKPOINT_DIR
    if not parent.is_dir():
        return []
    found = []
    for child in parent.iterdir():
        match = _NAME.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def load_checkpoint(folder: str | os.PathLike, map_location: str = 'cpu') -> dict[str, Any]:
    """Read a checkpoint folder's state.

    Raises:
        ValueError: if the file is not a checkpoint of this format (the message names it).
    """
    path = Path(folder) / STATE_FILE
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError/EOFError/pickle errors for damage
        raise ValueError(f'{path} is not a readable checkpoint: {err}') from err
    if not isinstance(state, dict) or state.get('format_version') != FORMAT_VERSION:
        raise ValueError(f'{path} is not a training checkpoint of format {FORMAT_VERSION}')
    return state


def read_best(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``best.json`` of a run (``step``, ``heldout_loss``), or None."""
    path = Path(run_dir) / CHECKPOINT_DIR / BEST_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_best(run_dir: str | os.PathLike, step: int, heldout_loss: float) -> None:
    """Record the best checkpoint atomically (temporary file, fsync, rename)."""
    parent = Path(run_dir) / CHECKPOINT_DIR
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f'{_TMP_PREFIX}{BEST_FILE}'
    doc = json.dumps({'step': step, 'heldout_loss': heldout_loss})
    _write_file(tmp, lambda f: f.write(doc.encode()))
    tmp.replace(parent / BEST_FILE)
    _fsync_dir(parent)


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete checkpoints beyond the newest ``keep_last``, never the best one.

    Returns:
        The folders removed.
    """
    best = read_best(run_dir)
    best_step = best['step'] if best else None
    found = list_checkpoints(run_dir)
    removed = []
    for step, folder in found[:-keep_last] if keep_last else found:
        if step == best_step:
            continue
        shutil.rmtree(folder)
        removed.append(folder)
    return removed

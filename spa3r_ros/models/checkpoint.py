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

"""Checkpoint utilities: read weights, check them exhaustively, and the project's own format.

* :func:`read_state_dict` reads ``.safetensors`` (preferred) or ``.pt/.pth/.bin`` files; the
  latter only through ``torch.load(weights_only=True)``, so no pickled code ever runs.
* :func:`check_state_dict` compares every key and shape with a model and raises one
  :class:`CheckpointError` naming all missing, unexpected and mis-shaped keys (the exhaustive
  check of nanoGPT's ``from_pretrained``, instead of the silent ``strict=False`` of the hub mixin).
* :func:`load_vggt_1b` loads the facebook/VGGT-1B release layout (``track_head.*`` dropped with a
  log note; for Spa3R's RMS global q/k norm the unused q/k norm biases too, as the reference's
  non-strict load does).
* :func:`save_pretrained` / :func:`load_pretrained`: ``model.safetensors`` plus ``config.json``
  (``model_type``, ``schema_version``, ``config``); the config rebuilds the exact model through
  the explicit :data:`MODEL_REGISTRY` (extend it with :func:`register_model`).
"""

from collections.abc import Iterable, Mapping
import json
import logging
import os
from pathlib import Path
import tempfile
from typing import Any

from safetensors.torch import load_file, save_file
import torch
from torch import nn, Tensor

from spa3r_ros.configs.serialize import config_from_dict, config_to_dict
from spa3r_ros.configs.spa3r import Spa3RConfig
from spa3r_ros.configs.vggt import VGGTConfig
from spa3r_ros.core.errors import CheckpointError, ConfigError, raise_on_mismatch
from spa3r_ros.models.spa3r.model import Spa3R
from spa3r_ros.models.vggt.model import VGGT

logger = logging.getLogger(__name__)

WEIGHTS_NAME = 'model.safetensors'
CONFIG_NAME = 'config.json'
SCHEMA_VERSION = 1
_TORCH_SUFFIXES = ('.pt', '.pth', '.bin', '.ckpt')

# model_type -> (config class, model class). Explicit on purpose: no import strings.
MODEL_REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {
    'vggt': (VGGTConfig, VGGT),
    'spa3r': (Spa3RConfig, Spa3R),
}


def register_model(model_type: str, config_cls: type, model_cls: type[nn.Module]) -> None:
    """Add a model to :data:`MODEL_REGISTRY` so :func:`load_pretrained` can rebuild it.

    Args:
        model_type: the name written to ``config.json``.
        config_cls: the frozen config dataclass; the model is built as ``model_cls(config)``.
        model_cls: the ``nn.Module`` subclass.

    Raises:
        ValueError: if ``model_type`` is already registered with other classes.
    """
    current = MODEL_REGISTRY.get(model_type)
    if current is not None and current != (config_cls, model_cls):
        raise ValueError(f'model_type {model_type!r} is already registered as {current}')
    MODEL_REGISTRY[model_type] = (config_cls, model_cls)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a flat ``{key: tensor}`` state dict from a file (tensors land on the CPU).

    Args:
        path: a ``.safetensors`` file, or a ``.pt/.pth/.bin/.ckpt`` torch file holding a state
            dict (or a dict with a ``state_dict`` / ``model`` entry that is one).

    Returns:
        The state dict, dtypes as stored.

    Raises:
        CheckpointError: if the file is missing, has an unknown suffix, cannot be read, or holds
            something other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint file not found: {path}')
    try:
        if path.suffix == '.safetensors':
            return load_file(path)
        if path.suffix not in _TORCH_SUFFIXES:
            raise CheckpointError(
                f'unknown checkpoint suffix {path.suffix!r} for {path}; '
                f'expected .safetensors or one of {_TORCH_SUFFIXES}'
            )
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # any reader failure means a bad checkpoint
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from err
    if isinstance(obj, Mapping):
        for nested in ('state_dict', 'model'):
            if isinstance(obj.get(nested), Mapping):
                obj = obj[nested]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f'{path} does not hold a flat state dict of tensors')
    return dict(obj)


def _ignored(key: str, prefixes: Iterable[str]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def check_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], *, ignore_prefixes: Iterable[str] = ()
) -> None:
    """Compare every key and shape of ``state_dict`` with ``model.state_dict()``.

    Args:
        model: the target model (may live on the meta device).
        state_dict: the weights to check.
        ignore_prefixes: keys starting with any of these are skipped on both sides.

    Raises:
        CheckpointError: listing every missing key, every unexpected key and every key whose
            shape differs (with both shapes).
    """
    prefixes = tuple(ignore_prefixes)
    expected = {
        k: tuple(v.shape) for k, v in model.state_dict().items() if not _ignored(k, prefixes)
    }
    given = {k: tuple(v.shape) for k, v in state_dict.items() if not _ignored(k, prefixes)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mis_shaped = sorted(
        f'{k}: checkpoint {list(given[k])} vs model {list(expected[k])}'
        for k in set(expected) & set(given)
        if expected[k] != given[k]
    )
    raise_on_mismatch(
        f'{type(model).__name__} state dict mismatch',
        [
            ('missing keys', missing),
            ('unexpected keys', unexpected),
            ('mis-shaped keys', mis_shaped),
        ],
    )


def load_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    ignore_prefixes: Iterable[str] = (),
    dtype: torch.dtype | None = None,
) -> None:
    """Check ``state_dict`` exhaustively, then copy it into ``model``.

    Args:
        model: the target model.
        state_dict: the weights.
        ignore_prefixes: checkpoint keys to drop (they must not exist in the model either).
        dtype: cast floating-point tensors to this dtype first (e.g. float16 files to float32);
            None keeps the model's dtypes (``load_state_dict`` copies into them).

    Raises:
        CheckpointError: see :func:`check_state_dict`.
    """
    prefixes = tuple(ignore_prefixes)
    check_state_dict(model, state_dict, ignore_prefixes=prefixes)
    kept = {}
    for key, value in state_dict.items():
        if _ignored(key, prefixes):
            continue
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        kept[key] = value
    model.load_state_dict(kept, strict=not prefixes)


def _find_weights(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in (WEIGHTS_NAME, 'pytorch_model.bin', 'model.pt'):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f'no {WEIGHTS_NAME}, pytorch_model.bin or model.pt in {path}')
    raise CheckpointError(f'checkpoint not found: {path}')


def load_vggt_1b(model: VGGT, path: str | os.PathLike) -> None:
    """Load facebook/VGGT-1B release weights (a file, or the folder holding them) into ``model``.

    ``track_head.*`` keys are dropped with a logged note (this project builds no track head). If
    the model's global blocks use RMS q/k norms (Spa3R), the checkpoint's
    ``aggregator.global_blocks.*.attn.{q,k}_norm.bias`` are dropped with a note as well: the
    RMSNorm has no bias, which is exactly what Spa3R's non-strict load does. Everything else must
    match exactly; weights are cast to the model's dtype.

    Args:
        model: a :class:`VGGT` (any sizes; the checkpoint must fit them).
        path: ``model.safetensors`` / ``.pt`` / ``.bin`` file or a folder containing one.

    Raises:
        CheckpointError: if the file is missing or unreadable, or keys/shapes do not match.
    """
    state = read_state_dict(_find_weights(Path(path)))
    track = [k for k in state if k.startswith('track_head.')]
    if track:
        logger.info('dropping %d track_head.* keys (no track head is built)', len(track))
        state = {k: v for k, v in state.items() if not k.startswith('track_head.')}
    if model.config.aggregator.global_qk_norm == 'rms':
        biases = [
            k
            for k in state
            if k.startswith('aggregator.global_blocks.')
            and k.endswith(('.attn.q_norm.bias', '.attn.k_norm.bias'))
        ]
        if biases:
            logger.info('dropping %d global q/k norm biases (RMS q/k norm, as Spa3R)', len(biases))
            state = {k: v for k, v in state.items() if k not in set(biases)}
    load_checked(model, state)


def _model_type_of(model: nn.Module) -> str:
    for name, (_, model_cls) in MODEL_REGISTRY.items():
        if type(model) is model_cls:
            return name
    raise CheckpointError(f'{type(model).__name__} is not in MODEL_REGISTRY; register_model() it')


def _atomic_write(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f'.{target.name}.', suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pretrained(model: nn.Module, config: Any, folder: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (created if needed).

    Each file is written to a temporary name and renamed into place; the weights go first, so a
    present ``config.json`` always comes with complete weights.

    Args:
        model: a registered model class instance.
        config: its config dataclass (must be the registered config class).
        folder: output folder.

    Returns:
        The folder.

    Raises:
        CheckpointError: if the model is not registered or the config class does not match.
    """
    folder = Path(folder)
    model_type = _model_type_of(model)
    config_cls, _ = MODEL_REGISTRY[model_type]
    if type(config) is not config_cls:
        raise CheckpointError(
            f'{model_type} expects a {config_cls.__name__}, got {type(config).__name__}'
        )
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {'model_type': model_type, 'schema_version': str(SCHEMA_VERSION)}
    _atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(tensors, p, metadata=meta))
    doc = {
        'model_type': model_type,
        'schema_version': SCHEMA_VERSION,
        'config': config_to_dict(config),
    }
    text = json.dumps(doc, indent=2, sort_keys=False) + '\n'
    _atomic_write(folder / CONFIG_NAME, lambda p: Path(p).write_text(text))
    return folder


def load_pretrained(folder: str | os.PathLike, *, dtype: torch.dtype | None = None) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` and load its weights.

    Args:
        folder: the folder holding ``config.json`` and ``model.safetensors``.
        dtype: optional dtype to cast floating-point weights to (and the model with them).

    Returns:
        The model in eval mode, on the CPU.

    Raises:
        CheckpointError: if a file is missing, the schema version or model type is unknown,
            the config is invalid, or the weights do not match.
    """
    folder = Path(folder)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f'no {CONFIG_NAME} in {folder}')
    try:
        doc = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f'{cfg_path} is not valid JSON: {err}') from err
    version = doc.get('schema_version')
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            f'{cfg_path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})'
        )
    model_type = doc.get('model_type')
    if model_type not in MODEL_REGISTRY:
        raise CheckpointError(
            f'{cfg_path}: unknown model_type {model_type!r}; known: {sorted(MODEL_REGISTRY)}'
        )
    config_cls, model_cls = MODEL_REGISTRY[model_type]
    try:
        config = config_from_dict(config_cls, doc.get('config', {}))
    except ConfigError as err:
        raise CheckpointError(f'{cfg_path}: invalid config: {err}') from err
    model = model_cls(config)
    if dtype is not None:
        model = model.to(dtype)
    load_checked(model, read_state_dict(folder / WEIGHTS_NAME), dtype=dtype)
    return model.eval()

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

"""Loading Spa3-VLM checkpoints in the published (transformers 4.50) layout into :class:`Spa3VLM`.

The published checkpoint is a Hugging Face folder (``config.json`` + safetensors, possibly
sharded) written by the reference on transformers 4.50. Its keys differ from our module tree in a
few prefixes only; the mapping is explicit and total (an unknown key is an error, not a skip):

=====================================  ============================================
published (4.50) key                   :class:`Spa3VLM` key
=====================================  ============================================
``visual.*``                           ``qwen.model.visual.*``
``model.*`` (the text decoder)          ``qwen.model.language_model.*``
``lm_head.*``                          ``qwen.lm_head.*``
``geometry_projector.*``, ``geom_cross_attention.*``, ``ln.*``, ``geometry_adaptor.*``,
``geometry_gate.*``                     ``injector.<same key>``
``geometry_encoder.spa3r.*``           ``geometry_encoder.*`` (a Spa3R, when one is attached)
=====================================  ============================================

Keys already in the transformers 5.x layout (``model.visual.*``, ``model.language_model.*``)
are accepted too. The HF config's own fields (``use_geometry_encoder``, ``spa3r_embed_dim``,
``spa3r_num_queries``, ...) ride along in ``Qwen2_5_VLConfig`` and size the geometry modules.

Where files come from: a local folder, or a hub id resolved through the local Hugging Face cache.
With ``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) nothing is downloaded, and a missing
file is a :class:`CheckpointError` that names it.
"""

from collections.abc import Mapping
import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from spa3r_ros.core.errors import CheckpointError

logger = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
WEIGHTS_INDEX_FILE = 'model.safetensors.index.json'

# Names of the geometry modules at the root of the published model (spa3r_spec.md section 3.2).
GEOMETRY_MODULE_NAMES = (
    'geometry_projector',
    'geom_cross_attention',
    'ln',
    'geometry_adaptor',
    'geometry_gate',
)

# (published prefix, our prefix), first match wins: the 5.x forms come before the bare 'model.'.
_PREFIX_RULES: tuple[tuple[str, str], ...] = (
    ('geometry_encoder.spa3r.', 'geometry_encoder.'),
    ('model.visual.', 'qwen.model.visual.'),
    ('model.language_model.', 'qwen.model.language_model.'),
    ('visual.', 'qwen.model.visual.'),
    ('model.', 'qwen.model.language_model.'),
    ('lm_head.', 'qwen.lm_head.'),
    *((f'{name}.', f'injector.{name}.') for name in GEOMETRY_MODULE_NAMES),
)

# Our prefix -> published prefix, for writing the published layout (the 4.50 forms).
_INVERSE_RULES: tuple[tuple[str, str], ...] = (
    ('geometry_encoder.', 'geometry_encoder.spa3r.'),
    ('qwen.model.visual.', 'visual.'),
    ('qwen.model.language_model.', 'model.'),
    ('qwen.lm_head.', 'lm_head.'),
    ('injector.', ''),
)


def map_published_key(key: str) -> str:
    """Our :class:`Spa3VLM` key for a key of the published (4.50) checkpoint.

    Raises:
        CheckpointError: if the key matches no rule (it is named).
    """
    for old, new in _PREFIX_RULES:
        if key.startswith(old):
            return new + key[len(old) :]
    raise CheckpointError(f'checkpoint key {key!r} is not part of the Spa3-VLM layout')


def to_published_key(key: str) -> str:
    """The published (4.50) key for one of our :class:`Spa3VLM` keys (inverse of the mapping)."""
    for ours, published in _INVERSE_RULES:
        if key.startswith(ours):
            return published + key[len(ours) :]
    raise CheckpointError(f'model key {key!r} has no published counterpart')


def convert_published_state_dict(
    state_dict: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename a whole published state dict to our layout; every key must be known.

    Raises:
        CheckpointError: listing every unknown key, or two keys that map to the same name.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        try:
            new = map_published_key(key)
        except CheckpointError:
            unknown.append(key)
            continue
        if new in out:
            raise CheckpointError(f'checkpoint keys collide on {new!r} (one of them is {key!r})')
        out[new] = value
    if unknown:
        raise CheckpointError(f'{len(unknown)} checkpoint keys are not Spa3-VLM keys: {unknown}')
    return out


def to_published_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in the published layout (what the reference would save)."""
    return {to_published_key(k): v for k, v in state_dict.items()}


def _offline() -> bool:
    return os.environ.get('HF_HUB_OFFLINE', '0').lower() in ('1', 'true', 'yes', 'on')


def resolve_checkpoint_dir(
    path_or_id: str | os.PathLike,
    *,
    local_files_only: bool | None = None,
    revision: str | None = None,
) -> Path:
    """Find a checkpoint folder: a local path as is, or a hub id through the HF cache.

    Args:
        path_or_id: a folder with ``config.json``, or a hub id such as ``hustvl/Spa3-VLM``.
        local_files_only: never download; defaults to True when ``HF_HUB_OFFLINE`` is set.
        revision: hub revision (branch, tag or commit).

    Returns:
        The folder holding the checkpoint files.

    Raises:
        CheckpointError: naming the path or id and why it could not be resolved.
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f'{path / CONFIG_FILE} is missing')
        return path
    text = str(path_or_id)
    if path.exists() or text.startswith(('/', '.', '~')) or text.count('/') != 1:
        raise CheckpointError(f'checkpoint folder {text!r} does not exist')
    if local_files_only is None:
        local_files_only = _offline()
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            text,
            revision=revision,
            local_files_only=local_files_only,
            allow_patterns=['*.json', '*.safetensors', '*.txt', '*.model'],
        )
    except Exception as exc:  # the hub raises many types; all mean "not available"
        where = 'in the local Hugging Face cache (offline)' if local_files_only else 'on the hub'
        raise CheckpointError(f'checkpoint {text!r} not found {where}: {exc}') from exc
    return Path(folder)


def read_config_dict(folder: Path) -> dict:
    """The HF ``config.json`` of a checkpoint folder, as a dict."""
    file = folder / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f'{file} is missing')
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f'{file} is not valid JSON: {exc}') from exc


def read_safetensors_folder(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder (single file or sharded with an index).

    Raises:
        CheckpointError: naming a missing weights file or shard.
    """
    from safetensors.torch import load_file

    index = folder / WEIGHTS_INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text()).get('weight_map', {})
        files = sorted(set(weight_map.values()))
    elif (folder / WEIGHTS_FILE).is_file():
        files = [WEIGHTS_FILE]
    else:
        raise CheckpointError(f'neither {folder / WEIGHTS_FILE} nor {index} exists')
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        file = folder / name
        if not file.is_file():
            raise CheckpointError(f'checkpoint shard {file} is missing')
        tensors.update(load_file(str(file)))
    return tensors


def load_published_weights(
    model: nn.Module,
    published: Mapping[str, torch.Tensor],
    *,
    require_geometry_encoder: bool = False,
) -> None:
    """Load a published-layout state dict into a :class:`Spa3VLM`, checking keys and shapes.

    Tensors are cast to the model's dtype (the golden weights are float16 on disk). A checkpoint
    without ``lm_head.weight`` is fine when the config ties it to the embeddings (Qwen 3B).
    ``geometry_encoder.spa3r.*`` keys load into an attached encoder (only the keys it has; a
    Spa3R checkpoint also holds training-only parts); they are ignored when none is attached.

    Args:
        model: the :class:`Spa3VLM` to fill.
        published: the checkpoint's tensors in the published layout.
        require_geometry_encoder: fail when an attached encoder gets no weights from here.

    Raises:
        CheckpointError: listing missing keys, unexpected keys and shape mismatches.
    """
    converted = convert_published_state_dict(published)
    own = model.state_dict()
    encoder_keys = {k for k in own if k.startswith('geometry_encoder.')}
    tied = bool(getattr(model.config, 'tie_word_embeddings', False)) or bool(
        getattr(model.config.text_config, 'tie_word_embeddings', False)
    )
    missing = [k for k in own if k not in converted and k not in encoder_keys]
    if tied and 'qwen.lm_head.weight' in missing:
        missing.remove('qwen.lm_head.weight')
    encoder_given = [k for k in converted if k.startswith('geometry_encoder.')]
    unexpected = [k for k in converted if k not in own and not k.startswith('geometry_encoder.')]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in converted.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if encoder_keys:
        missing_enc = sorted(encoder_keys - set(encoder_given))
        if encoder_given and missing_enc:
            missing.extend(missing_enc)
        elif require_geometry_encoder and not encoder_given:
            raise CheckpointError('the checkpoint holds no geometry_encoder.spa3r.* weights')
    if missing or unexpected or mismatched:
        raise CheckpointError(
            'checkpoint does not match the model: '
            f'missing {sorted(missing)}; unexpected {sorted(unexpected)}; shapes {mismatched}'
        )
    dtype = next(iter(own.values())).dtype
    to_load = {
        k: v.to(dtype) if v.is_floating_point() else v for k, v in converted.items() if k in own
    }
    result = model.load_state_dict(to_load, strict=False)
    # Everything not loaded must be an explained absence (tied head, encoder loaded elsewhere).
    leftover = [
        k for k in result.missing_keys if k != 'qwen.lm_head.weight' and k not in encoder_keys
    ]
    if leftover or result.unexpected_keys:
        raise CheckpointError(f'load_state_dict left {leftover} {result.unexpected_keys}')
    if tied:
        model.qwen.tie_weights()
    ignored = len(encoder_given) - sum(1 for k in encoder_given if k in own)
    if ignored:
        logger.info(
            'ignored %d geometry_encoder.spa3r.* tensors the encoder does not use', ignored
        )


def load_geometry_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Fill a geometry encoder (a Spa3R) from its own checkpoint.

    Accepts a ``.safetensors`` file or a Lightning ``.ckpt`` (read with ``weights_only=True``;
    its ``state_dict`` keys carry a ``model.`` prefix, which is stripped). Every key of
    ``encoder`` must be present; training-only extras (decoder, heads, DINO) are ignored.

    Raises:
        CheckpointError: naming the file, or the missing keys and shape mismatches.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f'geometry encoder checkpoint {file} is missing')
    if file.suffix == '.safetensors':
        from safetensors.torch import load_file

        state = load_file(str(file))
    else:
        try:
            raw = torch.load(file, map_location='cpu', weights_only=True)
        except Exception as exc:
            raise CheckpointError(f'cannot read {file}: {exc}') from exc
        state = raw.get('model_state_dict') or raw.get('state_dict') or raw
    if any(k.startswith('model.') for k in state):
        state = {k[len('model.') :]: v for k, v in state.items() if k.startswith('model.')}
    own = encoder.state_dict()
    missing = sorted(k for k in own if k not in state)
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or mismatched:
        raise CheckpointError(f'{file} does not fit the encoder: missing {missing}; {mismatched}')
    encoder.load_state_dict(
        {k: state[k].to(v.dtype) if v.is_floating_point() else state[k] for k, v in own.items()}
    )


def load_spa3_vlm(
    path_or_id: str | os.PathLike,
    *,
    geometry_encoder: nn.Module | None = None,
    geometry_encoder_checkpoint: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
    local_files_only: bool | None = None,
):
    """Build a :class:`Spa3VLM` from a published checkpoint folder or hub id.

    Args:
        path_or_id: local folder or hub id (see :func:`resolve_checkpoint_dir`).
        geometry_encoder: the Spa3R to attach (built from its config; not loaded yet).
        geometry_encoder_checkpoint: the encoder's own checkpoint; when None, the encoder is
            filled from the VLM checkpoint's ``geometry_encoder.spa3r.*`` keys.
        dtype: dtype of the model's weights (tensors on disk are cast to it).
        local_files_only: never download (default: True when ``HF_HUB_OFFLINE`` is set).

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError: if a file is missing, the config is not a Spa3-VLM, or keys disagree.
    """
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.models.vlm.model import geometry_config_from_qwen, Spa3VLM

    folder = resolve_checkpoint_dir(path_or_id, local_files_only=local_files_only)
    config_dict = read_config_dict(folder)
    if not (config_dict.get('use_geometry_encoder') or config_dict.get('use_vggt_feature')):
        raise CheckpointError(
            f'{folder / CONFIG_FILE} has use_geometry_encoder unset: not Spa3-VLM'
        )
    if config_dict.get('geometry_encoder_type', 'spa3r') != 'spa3r':
        raise CheckpointError(
            f'geometry_encoder_type {config_dict["geometry_encoder_type"]!r} is not supported'
        )
    qwen_config = Qwen2_5_VLConfig(**config_dict)
    model = Spa3VLM(qwen_config, geometry_config_from_qwen(qwen_config), geometry_encoder)
    model.to(dtype)
    load_published_weights(
        model,
        read_safetensors_folder(folder),
        require_geometry_encoder=geometry_encoder is not None
        and geometry_encoder_checkpoint is None,
    )
    if geometry_encoder is not None and geometry_encoder_checkpoint is not None:
        load_geometry_encoder_weights(geometry_encoder, geometry_encoder_checkpoint)
    return model.eval()


def manifest_mismatches(model_keys: Mapping[str, tuple[int, ...]], manifest: Mapping) -> list[str]:
    """Differences between published-layout (key, shape) pairs and a golden manifest.

    Args:
        model_keys: published key -> shape, for the keys the manifest covers.
        manifest: a ``golden/manifests/*.json`` document (its ``keys`` list).

    Returns:
        Human-readable differences; empty when keys and shapes agree.
    """
    expected = {entry['key']: tuple(entry['shape']) for entry in manifest['keys']}
    problems = [f'missing {k}' for k in sorted(expected.keys() - model_keys.keys())]
    problems += [f'unexpected {k}' for k in sorted(model_keys.keys() - expected.keys())]
    problems += [
        f'{k}: {tuple(model_keys[k])} vs manifest {shape}'
        for k, shape in expected.items()
        if k in model_keys and tuple(model_keys[k]) != shape
    ]
    return problems

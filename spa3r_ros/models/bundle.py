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

"""The models a scene engine runs, as one bundle, and the presets that build it.

A :class:`SceneModels` holds a :class:`~spa3r_ros.models.vlm.model.Spa3VLM` with its Spa3R
geometry encoder attached, the tokenizer, the Qwen image processor and the image sizes of both
branches. It is built from a preset of ``models/registry.yaml`` (the parameter ``model.preset``):

* ``tiny-random``: tiny random weights made in memory from a seed (no file, no network); for tests,
  CPU-only machines and demos. Its answers mean nothing.
* ``official``: Spa3-VLM on Qwen2.5-VL-3B (``hustvl/Spa3-VLM``, published layout) with the
  released Spa3R encoder, from a local folder or the Hugging Face cache; with ``HF_HUB_OFFLINE=1``
  or no network only local files are used, and a missing file is an error that names it.

Any bundle can be written to a folder with :func:`save_scene_models` and rebuilt exactly with
:func:`load_scene_models` (the project's own format; the parameter ``model.checkpoint_path``
points at such a folder or at a published Spa3-VLM folder). Nothing here runs at import time and
constructors never touch disk: loading is explicit.
"""

from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import sys

import torch
import yaml

from spa3r_ros.configs.keyframes import WINDOW_BOUNDS
from spa3r_ros.configs.serialize import config_from_dict, config_to_dict
from spa3r_ros.configs.spa3r import spa3r_official_config, Spa3RConfig
from spa3r_ros.configs.vlm import PixelBudgetConfig
from spa3r_ros.core.errors import CheckpointError, ConfigError
from spa3r_ros.models.inference import weights_dtype

logger = logging.getLogger(__name__)

REGISTRY_ENV = 'SPA3R_MODEL_REGISTRY'
BUNDLE_FILE = 'scene_models.json'
BUNDLE_SCHEMA_VERSION = 1
PRESET_KINDS = ('tiny_random', 'random', 'trained', 'spa3_vlm')
#: Kinds whose weights are drawn at random (their answers mean nothing).
RANDOM_KINDS = ('tiny_random', 'random')
#: Architectures a ``random`` preset can draw (``tiny_random`` is ``tiny``).
ARCHITECTURES = ('tiny', 'small')


@dataclass
class SceneModels:
    """Everything a scene engine needs to turn frames and a question into an answer.

    Attributes:
        model_id: the preset name or checkpoint folder (for logs and ``SceneStatus.model_id``).
        vlm: the Spa3-VLM in eval mode on ``device``; ``vlm.geometry_encoder`` is the Spa3R.
        tokenizer: a tokenizer with Qwen's special tokens.
        image_processor: Qwen's image processor for ``pixels``' budget.
        pixels: image sizes of both branches (``geometry_width`` for Spa3R, Qwen's pixel budget).
        device: where the models run.
        keyframe_window: the keyframe window this VLM was trained with (its training questions
            showed up to ``keyframe_window + 1`` frames, as a node with that window holds);
            answers degrade under another window. None when unknown (random presets, official
            checkpoints).
    """

    model_id: str
    vlm: torch.nn.Module
    tokenizer: object
    image_processor: object
    pixels: PixelBudgetConfig
    device: torch.device
    keyframe_window: int | None = None

    @property
    def spa3r(self) -> torch.nn.Module:
        """The Spa3R geometry encoder (``encode(images [B, S, 3, H, W]) -> [B, Q, D]``)."""
        return self.vlm.geometry_encoder

    @property
    def geometry_width(self) -> int:
        """Width of the geometry branch's frames (multiple of 14)."""
        return self.pixels.geometry_width

    def parameter_count(self) -> int:
        """Number of parameters of the VLM and its encoder."""
        return sum(p.numel() for p in self.vlm.parameters())


def resolve_device(spec: str) -> torch.device:
    """``'auto'`` -> the first CUDA device when there is one, else the CPU; other specs as given.

    Raises:
        ConfigError: for an unknown spec, or a CUDA device that is not there.
    """
    if spec in ('', 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise ConfigError(
            f"model.device {spec!r} is not 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from err
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'model.device {spec!r}: no CUDA device is available')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f'model.device {spec!r}: only {torch.cuda.device_count()} CUDA device(s)'
            )
    elif device.type != 'cpu':
        raise ConfigError(f"model.device {spec!r} is not 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return device


# ---------------------------------------------------------------------------------- registry


def registry_candidates() -> list[Path]:
    """Where ``registry.yaml`` is looked for, in order.

    ``$SPA3R_MODEL_REGISTRY``; the source tree's ``models/``; the ``share/spa3r_ros/models/`` of
    the install prefix this package lives in (colcon/ament install) and of ``sys.prefix`` (pip).
    """
    candidates = []
    if os.environ.get(REGISTRY_ENV):
        candidates.append(Path(os.environ[REGISTRY_ENV]))
    here = Path(__file__).resolve()
    candidates.append(here.parents[2] / 'models' / 'registry.yaml')
    for parent in here.parents:
        if parent.name == 'lib':
            candidates.append(parent.parent / 'share' / 'spa3r_ros' / 'models' / 'registry.yaml')
            break
    candidates.append(Path(sys.prefix) / 'share' / 'spa3r_ros' / 'models' / 'registry.yaml')
    return candidates


def _registry_path() -> Path:
    """The first of :func:`registry_candidates` that exists.

    Raises:
        ConfigError: if none does.
    """
    found = [p for p in registry_candidates() if p.is_file()]
    if not found:
        where = ', '.join(str(p) for p in registry_candidates())
        raise ConfigError(f'no model registry found (looked in {where})')
    return found[0]


def load_registry(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Read the preset registry.

    Args:
        path: the YAML file; by default the first of :func:`registry_candidates` that exists.

    Returns:
        preset name -> its entry (``kind``, ``description``, sources ...).

    Raises:
        ConfigError: if no registry is found, or it is malformed.
    """
    path = Path(path) if path is not None else _registry_path()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f'cannot read the model registry {path}: {err}') from err
    presets = doc.get('presets') if isinstance(doc, dict) else None
    if not isinstance(presets, dict):
        raise ConfigError(f'{path}: expected a mapping "presets:"')
    for name, entry in presets.items():
        if not isinstance(entry, dict) or entry.get('kind') not in PRESET_KINDS:
            raise ConfigError(f'{path}: preset {name!r} needs a kind in {PRESET_KINDS}')
    return presets


# ----------------------------------------------------------------------------- building


def _image_processor(pixels: PixelBudgetConfig):
    from spa3r_ros.models.vlm.preprocess import build_qwen_image_processor

    return build_qwen_image_processor(pixels)


def build_tiny_random(seed: int = 0, device: str | torch.device = 'cpu') -> SceneModels:
    """The ``tiny-random`` bundle: tiny Spa3R + tiny Qwen2.5-VL + geometry modules, seeded.

    The same seed gives the same weights on every machine (weights are drawn on the CPU, then
    moved). The geometry adaptor's last layer is drawn at random instead of the reference's zero
    init, so geometry visibly changes the answers.

    Args:
        seed: the weights' seed.
        device: where the models run.

    Returns:
        The bundle (model_id ``'tiny-random'``).
    """
    return build_random('tiny', seed, device)


def build_random(
    architecture: str, seed: int = 0, device: str | torch.device = 'cpu', model_id: str = ''
) -> SceneModels:
    """A bundle of seeded random weights of one of :data:`ARCHITECTURES`.

    * ``tiny`` (about 0.2 M parameters): for tests and demos; its adaptor's last layer is drawn
      at random (not the reference's zero init) so that geometry visibly changes the answers.
    * ``small`` (about 1.7 M with the PSFM decoder and heads, 1.5 M exported;
      :mod:`spa3r_ros.models.vlm.small`): the starting point of ``scripts/train_synthetic.sh``;
      reference initialisation (the adaptor's last layer zero).

    Args:
        architecture: ``'tiny'`` or ``'small'``.
        seed: the weights' seed (drawn on the CPU, so every machine gets the same weights).
        device: where the models run.
        model_id: the bundle's id (default ``'<architecture>-random'``).

    Raises:
        ConfigError: for an unknown architecture.
    """
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.models.spa3r.model import Spa3R
    from spa3r_ros.models.vlm import small, tiny
    from spa3r_ros.models.vlm.model import Spa3VLM

    if architecture not in ARCHITECTURES:
        raise ConfigError(f'unknown architecture {architecture!r}; one of {ARCHITECTURES}')
    tokenizer = tiny.build_tiny_qwen_tokenizer()
    special = tiny.special_token_ids(tokenizer)
    if architecture == 'tiny':
        config_dict = tiny.tiny_qwen_config_dict(special, len(tokenizer))
        spa3r_config = tiny.tiny_spa3r_config()
        pixels = PixelBudgetConfig(
            geometry_width=tiny.TINY_GEOMETRY_WIDTH, min_pixels=3136, max_pixels=6272
        )
    else:
        config_dict = small.small_qwen_config_dict(special, len(tokenizer))
        spa3r_config = small.small_spa3r_config()
        pixels = PixelBudgetConfig(
            geometry_width=small.SMALL_GEOMETRY_WIDTH,
            min_pixels=small.SMALL_MIN_PIXELS,
            max_pixels=small.SMALL_MAX_PIXELS,
        )
    qwen_config = Qwen2_5_VLConfig(**config_dict)
    devices = [torch.device(device)] if torch.device(device).type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        encoder = Spa3R(spa3r_config)
        vlm = Spa3VLM(qwen_config, geometry_encoder=encoder)
        if architecture == 'tiny':
            tiny.randomize_adaptor(vlm)
    return SceneModels(
        model_id=model_id or f'{architecture}-random',
        vlm=vlm.to(device).eval(),
        tokenizer=tokenizer,
        image_processor=_image_processor(pixels),
        pixels=pixels,
        device=torch.device(device),
    )


def save_scene_models(models: SceneModels, folder: str | os.PathLike) -> Path:
    """Write a bundle so :func:`load_scene_models` rebuilds it exactly.

    Layout: ``scene_models.json`` (schema, model_id, pixel budget, the Spa3R encoder's config,
    the keyframe window the VLM was trained with when known),
    ``vlm/`` (the Spa3-VLM in the published layout: ``config.json`` + ``model.safetensors``, the
    encoder's inference weights included as ``geometry_encoder.spa3r.*``: the frozen VGGT,
    ``projection``, ``query_embed``, ``encoder``; not the training decoder and heads) and
    ``tokenizer/``.

    Args:
        models: the bundle.
        folder: output folder (created; existing files are replaced).

    Returns:
        The folder.

    Raises:
        ValueError: a ``keyframe_window`` outside the engine's range (nothing is written).
    """
    from safetensors.torch import save_file

    from spa3r_ros.models.spa3r.model import Spa3R
    from spa3r_ros.models.vlm.checkpoint import to_published_state_dict

    if models.keyframe_window is not None and not valid_window(models.keyframe_window):
        raise ValueError(f'keyframe_window {models.keyframe_window!r} is out of {WINDOW_BOUNDS}')
    folder = Path(folder)
    (folder / 'vlm').mkdir(parents=True, exist_ok=True)
    # Only what inference runs: the Spa3R training decoder and its heads are left out.
    training_only = tuple(f'geometry_encoder.{m}.' for m in Spa3R.TRAINING_ONLY_MODULES)
    inference_state = {
        k: v for k, v in models.vlm.state_dict().items() if not k.startswith(training_only)
    }
    state = {
        k: v.detach().to('cpu').contiguous()
        for k, v in to_published_state_dict(inference_state).items()
    }
    save_file(state, str(folder / 'vlm' / 'model.safetensors'))
    (folder / 'vlm' / 'config.json').write_text(json.dumps(models.vlm.config.to_dict(), indent=2))
    models.tokenizer.save_pretrained(str(folder / 'tokenizer'))
    doc = {
        'schema_version': BUNDLE_SCHEMA_VERSION,
        'model_id': models.model_id,
        'pixels': config_to_dict(models.pixels),
        # The encoder's architecture; its weights are in the VLM file (geometry_encoder.spa3r.*).
        'spa3r_config': config_to_dict(models.spa3r.config),
    }
    if models.keyframe_window is not None:
        doc['keyframe_window'] = models.keyframe_window
    # Written last: a present scene_models.json means the other files are complete.
    (folder / BUNDLE_FILE).write_text(json.dumps(doc, indent=2))
    return folder


def load_scene_models(
    folder: str | os.PathLike, *, device: str | torch.device = 'cpu', model_id: str | None = None
) -> SceneModels:
    """Rebuild a bundle written by :func:`save_scene_models`.

    Args:
        folder: the folder.
        device: where the models run.
        model_id: overrides the stored id (default: the stored one).

    Raises:
        CheckpointError: if the folder or one of its files is missing or does not match.
    """
    from transformers import AutoTokenizer

    from spa3r_ros.models.spa3r.model import Spa3R
    from spa3r_ros.models.vlm.checkpoint import load_spa3_vlm

    folder = Path(folder).expanduser()
    bundle_file = folder / BUNDLE_FILE
    if not bundle_file.is_file():
        raise CheckpointError(
            f'{bundle_file} is missing: not a scene-models folder (see save_scene_models)'
        )
    try:
        doc = json.loads(bundle_file.read_text())
        version = doc['schema_version']
        pixels = config_from_dict(PixelBudgetConfig, doc['pixels'])
        spa3r_config = config_from_dict(Spa3RConfig, doc['spa3r_config'])
        keyframe_window = doc.get('keyframe_window')
        if keyframe_window is not None and not valid_window(keyframe_window):
            low, high = WINDOW_BOUNDS
            raise ValueError(
                f'keyframe_window must be an integer in {low}..{high}: {keyframe_window!r}'
            )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, ConfigError) as err:
        raise CheckpointError(f'{bundle_file} is not a valid bundle description: {err}') from err
    if version != BUNDLE_SCHEMA_VERSION:
        raise CheckpointError(f'{bundle_file}: unknown schema_version {version!r}')
    # Built empty from its config, inference part only; the VLM file fills it (checked key by
    # key; training-only tensors of older files are ignored and logged).
    encoder = Spa3R(spa3r_config, inference_only=True)
    device = torch.device(device)
    dtype = weights_dtype(device)
    vlm = load_spa3_vlm(
        folder / 'vlm', geometry_encoder=encoder, dtype=dtype, local_files_only=True
    )
    tokenizer_dir = folder / 'tokenizer'
    if not tokenizer_dir.is_dir():
        raise CheckpointError(f'{tokenizer_dir} is missing')
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    return SceneModels(
        model_id=model_id or doc.get('model_id') or str(folder),
        vlm=vlm.to(device).eval(),
        tokenizer=tokenizer,
        image_processor=_image_processor(pixels),
        pixels=pixels,
        device=device,
        keyframe_window=keyframe_window,
    )


def _load_spa3_vlm_preset(
    name: str, entry: dict, source: str, device: torch.device
) -> SceneModels:
    from transformers import AutoTokenizer

    from spa3r_ros.models.spa3r.model import Spa3R
    from spa3r_ros.models.vlm.checkpoint import load_spa3_vlm, resolve_checkpoint_dir

    try:
        folder = resolve_checkpoint_dir(source)
    except CheckpointError as err:
        raise CheckpointError(
            f'preset {name!r}: {err}. Put the checkpoint in the Hugging Face cache, or set '
            'model.checkpoint_path to a local folder holding it.'
        ) from err
    encoder = Spa3R(spa3r_official_config(), inference_only=True)
    dtype = weights_dtype(device)
    vlm = load_spa3_vlm(
        folder,
        geometry_encoder=encoder,
        geometry_encoder_checkpoint=entry.get('spa3r_checkpoint') or None,
        dtype=dtype,
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # transformers raises OSError/ValueError/...: all mean "not there"
        raise CheckpointError(f'no usable tokenizer in {folder}: {err}') from err
    pixels = PixelBudgetConfig(**entry.get('pixels', {}))
    return SceneModels(
        model_id=name,
        vlm=vlm.to(device).eval(),
        tokenizer=tokenizer,
        image_processor=_image_processor(pixels),
        pixels=pixels,
        device=device,
    )


def trained_preset_folder(name: str, entry: dict, registry: Path | None = None) -> Path:
    """The weights folder of a ``trained`` preset: its ``path``, relative to the registry's folder.

    Raises:
        ConfigError: if the entry names no path.
        CheckpointError: if the folder holds no bundle (a clone without the committed weights).
    """
    relative = entry.get('path')
    if not relative:
        raise ConfigError(f'preset {name!r} (kind trained) names no path')
    base = registry.parent if registry is not None else _registry_path().parent
    folder = (base / str(relative)).resolve()
    if not (folder / BUNDLE_FILE).is_file():
        raise CheckpointError(
            f'preset {name!r}: {folder / BUNDLE_FILE} is missing (the weights are committed under '
            'models/; is this a full checkout?)'
        )
    return folder


def trained_keyframe_window(folder: str | os.PathLike) -> int | None:
    """The keyframe window a bundle folder's VLM was trained with, read without loading it.

    For scripts (``scripts/eval_synthetic.sh`` gives ``tiny-random`` the trained model's window).

    Returns:
        The window, or None when the bundle does not record one (or is not readable: loading
        it reports that properly).
    """
    try:
        window = json.loads((Path(folder) / BUNDLE_FILE).read_text()).get('keyframe_window')
    except (OSError, ValueError, AttributeError):
        return None
    return window if valid_window(window) else None


def valid_window(window: object) -> bool:
    """Whether ``window`` is a keyframe window the engine accepts (an int in WINDOW_BOUNDS)."""
    low, high = WINDOW_BOUNDS
    return type(window) is int and low <= window <= high


def load_preset(
    name: str,
    *,
    device: str = 'auto',
    checkpoint_path: str = '',
    registry: str | os.PathLike | None = None,
) -> SceneModels:
    """Build the bundle of a registry preset (what ``configure`` of the node does).

    Args:
        name: a preset of the registry.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'``.
        checkpoint_path: a local folder that replaces the preset's weights: a folder written by
            :func:`save_scene_models`, or (for ``spa3_vlm`` presets) a published Spa3-VLM folder.
        registry: the registry file (default: :func:`load_registry`'s search).

    Returns:
        The bundle, in eval mode on the device.

    Raises:
        ConfigError: unknown preset or device.
        CheckpointError: a missing or mismatching checkpoint (the message names the file).
    """
    presets = load_registry(registry)
    if name not in presets:
        raise ConfigError(f'unknown model preset {name!r}; the registry has {sorted(presets)}')
    entry = presets[name]
    target = resolve_device(device)
    if checkpoint_path:
        path = Path(checkpoint_path).expanduser()
        if not path.exists():
            raise CheckpointError(f'model.checkpoint_path {str(path)!r} does not exist')
        if (path / BUNDLE_FILE).is_file() or entry['kind'] != 'spa3_vlm':
            logger.info('loading %s from %s', name, path)
            return load_scene_models(path, device=target, model_id=f'{name}:{path}')
        return _load_spa3_vlm_preset(f'{name}:{path}', entry, str(path), target)
    if entry['kind'] in RANDOM_KINDS:  # tiny_random: architecture tiny
        return build_random(
            str(entry.get('architecture', 'tiny')), int(entry.get('seed', 0)), target, name
        )
    if entry['kind'] == 'trained':
        folder = trained_preset_folder(name, entry, Path(registry) if registry else None)
        return load_scene_models(folder, device=target, model_id=name)
    source = entry.get('vlm')
    if not source:
        raise ConfigError(f'preset {name!r} names no vlm source')
    return _load_spa3_vlm_preset(name, entry, str(source), target)

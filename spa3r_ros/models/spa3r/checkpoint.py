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

"""Loading Spa3R weights: reference Lightning checkpoints and plain state dicts, fully checked.

A Spa3R Lightning checkpoint (``spa3r.ckpt``) is a dict whose ``state_dict`` maps
``'model.' + <Spa3R attribute path>`` to tensors; it also holds the frozen DINOv3 teacher under
``model.dino.*``, which this project does not build (semantic targets come with the batch), so
those keys are dropped with a log line. Every other key must exist in the model with the same
shape, and every model key must be present: mismatches raise :class:`CheckpointError` naming them.

Floating-point tensors are cast to the dtype of the parameter they load into (checkpoints stored
in float16/bfloat16 run in float32 on CPU; the cast from float16 is exact).

References:
    hustvl/Spa3R ``spa3_vlm/model/geometry_encoders/spa3r_encoder.py::load_model``; spec 2.8.
"""

from collections.abc import Mapping
import logging
from pathlib import Path
import pickle

from safetensors.torch import load_file
import torch
from torch import nn, Tensor

from spa3r_ros.core.errors import CheckpointError

logger = logging.getLogger(__name__)

#: Prefix of every model key in a Lightning checkpoint (``LitModule.model``).
LIGHTNING_PREFIX = 'model.'
#: Prefix of the frozen DINOv3 teacher, which is not part of this implementation.
DINO_PREFIX = 'dino.'
_MAX_NAMED = 20


def _names(keys: list[str]) -> str:
    shown = ', '.join(keys[:_MAX_NAMED])
    more = len(keys) - _MAX_NAMED
    return shown + (f' ... and {more} more' if more > 0 else '')


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Compare a state dict with a model's: same keys, same shapes.

    Args:
        model: the module to be loaded.
        state_dict: candidate tensors.
        source: where they came from (for the message).

    Raises:
        CheckpointError: listing missing keys, unexpected keys and shape mismatches.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing keys: {_names(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: {_names(unexpected)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: {_names(shapes)}')
    if problems:
        raise CheckpointError(
            f'{source} does not match {type(model).__name__}: ' + '; '.join(problems)
        )


def load_checked(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Check ``state_dict`` against ``model`` and load it, casting floats to the model's dtypes.

    Args:
        model: the module to fill.
        state_dict: tensors keyed like ``model.state_dict()``.
        source: where they came from (for messages).

    Raises:
        CheckpointError: on any key or shape mismatch (nothing is loaded then).
    """
    check_state_dict(model, state_dict, source)
    expected = model.state_dict()
    cast = {
        k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items()
    }
    model.load_state_dict(cast, strict=True)


def strip_lightning_state_dict(checkpoint: Mapping[str, object]) -> dict[str, Tensor]:
    """Extract Spa3R's tensors from a Lightning checkpoint dict.

    Takes ``model_state_dict``, else ``state_dict``, else the dict itself (as the reference
    loader does), keeps the keys under ``model.``, strips that prefix and drops ``dino.*``.

    Args:
        checkpoint: the object ``torch.load`` returned.

    Returns:
        The state dict with Spa3R attribute paths as keys.

    Raises:
        CheckpointError: if no ``model.`` key is found.
    """
    state = checkpoint.get('model_state_dict', checkpoint.get('state_dict', checkpoint))
    if not isinstance(state, Mapping):
        raise CheckpointError(f'checkpoint state dict is a {type(state).__name__}, not a dict')
    out = {
        k[len(LIGHTNING_PREFIX) :]: v
        for k, v in state.items()
        if isinstance(k, str) and k.startswith(LIGHTNING_PREFIX)
    }
    if not out:
        raise CheckpointError(f'checkpoint has no keys starting with {LIGHTNING_PREFIX!r}')
    dino = [k for k in out if k.startswith(DINO_PREFIX)]
    if dino:
        logger.info('ignoring %d frozen DINOv3 tensors (dino.*) of the checkpoint', len(dino))
        for k in dino:
            del out[k]
    return out


def load_lightning_checkpoint(model: nn.Module, path: Path | str) -> None:
    """Load a reference Spa3R Lightning ``.ckpt`` into ``model``.

    The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only;
    nothing is executed).

    Args:
        model: a :class:`~spa3r_ros.models.spa3r.model.Spa3R` of the checkpoint's architecture.
        path: the ``.ckpt`` file.

    Raises:
        CheckpointError: unreadable file, or any key or shape mismatch.
    """
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise CheckpointError(f'cannot read Lightning checkpoint {path}: {err}') from err
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{path} holds a {type(checkpoint).__name__}, not a dict')
    load_checked(model, strip_lightning_state_dict(checkpoint), str(path))
    logger.info('loaded Spa3R weights from Lightning checkpoint %s', path)


def load_safetensors_weights(model: nn.Module, path: Path | str) -> None:
    """Load a plain Spa3R state dict stored as safetensors (e.g. the golden ``weights``).

    Args:
        model: the module to fill.
        path: the ``.safetensors`` file, keyed like ``model.state_dict()``.

    Raises:
        CheckpointError: unreadable file, or any key or shape mismatch.
    """
    path = Path(path)
    try:
        state = load_file(path)
    except (OSError, RuntimeError, ValueError) as err:
        raise CheckpointError(f'cannot read {path}: {err}') from err
    load_checked(model, state, str(path))

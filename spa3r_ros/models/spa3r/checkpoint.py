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

"""Loading Spa3R weights from the reference's Lightning checkpoints.

A Spa3R Lightning checkpoint (``spa3r.ckpt``) is a dict whose ``state_dict`` maps
``'model.' + <Spa3R attribute path>`` to tensors; it also holds the frozen DINOv3 teacher under
``model.dino.*``, which is not part of the Spa3R module here (training builds the teacher on its
own, :mod:`spa3r_ros.models.dinov3`, and loads those keys with
:func:`~spa3r_ros.models.dinov3.teacher.load_dinov3_weights`), so this loader drops them with a
log line. Every other key must exist in the model with the same
shape, and every model key must be present: mismatches raise :class:`CheckpointError` naming them
(:func:`spa3r_ros.models.checkpoint.check_state_dict`). Floating-point tensors are copied into the
model's dtype (float16 files run in float32; that cast is exact).

The project's own format (``model.safetensors`` + ``config.json``) goes through
:func:`spa3r_ros.models.checkpoint.save_pretrained` / ``load_pretrained`` (model type
``'spa3r'``).

References:
    hustvl/Spa3R ``spa3_vlm/model/geometry_encoders/spa3r_encoder.py::load_model``; spec 2.8.
"""

from collections.abc import Mapping
import logging
import os
from pathlib import Path

from torch import nn, Tensor

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models.checkpoint import load_checked, read_state_dict

logger = logging.getLogger(__name__)

#: Prefix of every model key in a Lightning checkpoint (``LitModule.model``).
LIGHTNING_PREFIX = 'model.'
#: Prefix of the frozen DINOv3 teacher (loaded separately, by spa3r_ros.models.dinov3).
DINO_PREFIX = 'dino.'


def strip_lightning_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Turn a Lightning ``state_dict`` into Spa3R's own state dict.

    Keeps the keys under ``model.``, strips that prefix and drops ``dino.*`` (logged).

    Args:
        state: the checkpoint's ``state_dict`` entry.

    Returns:
        Tensors keyed by Spa3R attribute paths.

    Raises:
        CheckpointError: if no key starts with ``model.``.
    """
    out = {
        k[len(LIGHTNING_PREFIX) :]: v for k, v in state.items() if k.startswith(LIGHTNING_PREFIX)
    }
    if not out:
        raise CheckpointError(f'checkpoint has no keys starting with {LIGHTNING_PREFIX!r}')
    dino = [k for k in out if k.startswith(DINO_PREFIX)]
    if dino:
        logger.info('ignoring %d frozen DINOv3 tensors (dino.*) of the checkpoint', len(dino))
        for k in dino:
            del out[k]
    return out


def load_lightning_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a reference Spa3R Lightning ``.ckpt`` into ``model``.

    The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only;
    nothing is executed), through :func:`spa3r_ros.models.checkpoint.read_state_dict`.

    Args:
        model: a :class:`~spa3r_ros.models.spa3r.model.Spa3R` of the checkpoint's architecture.
        path: the ``.ckpt`` file.

    Raises:
        CheckpointError: unreadable file, or any key or shape mismatch (nothing is loaded then).
    """
    load_checked(model, strip_lightning_state_dict(read_state_dict(path)))
    logger.info('loaded Spa3R weights from Lightning checkpoint %s', Path(path))

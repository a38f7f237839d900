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

"""Export a trained Spa3R as a scene-models folder (``RUN/export``).

The folder is written by :func:`~spa3r_ros.models.bundle.save_scene_models`, so
``load_scene_models``, ``spa3r replay --checkpoint RUN/export`` and the node's
``model.checkpoint_path`` load it as they load any bundle. It holds the VLM the run started
from and its Spa3R encoder with the trained weights: only the inference part (the frozen VGGT,
``projection``, ``query_embed``, ``encoder``); the decoder, its heads and the pseudo-label heads
the training added are not kept.
"""

from collections.abc import Mapping
import dataclasses
import logging
import os
from pathlib import Path
import shutil

from torch import nn, Tensor

from spa3r_ros.models.bundle import save_scene_models

logger = logging.getLogger(__name__)


def export_spa3r_into_bundle(
    scene_models,
    trained_spa3r: nn.Module | Mapping[str, Tensor],
    folder: str | os.PathLike,
    model_id: str | None = None,
) -> Path:
    """Copy a trained Spa3R's weights into a bundle's encoder and save the bundle atomically.

    Args:
        scene_models: the starting :class:`~spa3r_ros.models.bundle.SceneModels` (its encoder is
            updated in place).
        trained_spa3r: the trained Spa3R, or its full state dict (a superset of the bundle
            encoder's keys).
        folder: output folder; replaced as a whole (written beside it, then renamed).
        model_id: id stored in the export (default: the starting id + ``+psfm``).

    Returns:
        The folder.

    Raises:
        ValueError: if the trained model lacks a key or shape of the bundle's encoder.
    """
    target = scene_models.spa3r
    own = target.state_dict()
    trained = trained_spa3r.state_dict() if isinstance(trained_spa3r, nn.Module) else trained_spa3r
    missing = [k for k in own if k not in trained]
    shapes = [k for k in own if k in trained and trained[k].shape != own[k].shape]
    if missing or shapes:
        raise ValueError(f'trained Spa3R does not fit the bundle: missing {missing[:8]}, {shapes}')
    target.load_state_dict(
        {k: trained[k].detach().to(own[k].device, own[k].dtype) for k in own}, strict=True
    )
    bundle = dataclasses.replace(
        scene_models, model_id=model_id or f'{scene_models.model_id}+psfm'
    )
    return save_bundle_atomically(bundle, folder)


def save_bundle_atomically(bundle, folder: str | os.PathLike) -> Path:
    """``save_scene_models`` into ``folder``, replacing it as a whole.

    The bundle is written beside the folder under a temporary name, then swapped in by renames,
    so a crash mid-write leaves the previous export (or none), never a half-written one.

    Returns:
        The folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f'.tmp-{folder.name}-{os.getpid()}'
    if tmp.exists():
        shutil.rmtree(tmp)
    save_scene_models(bundle, tmp)
    old = folder.parent / f'.old-{folder.name}-{os.getpid()}'
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)
    logger.info('exported %s to %s', bundle.model_id, folder)
    return folder

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

"""Golden case kind ``vggt``: a VGGT folder laid out like ``golden/vggt_tiny``.

Detection: ``config.json`` has top-level ``aggregator`` and ``patch_embed_dinov2`` sections and
``weights.safetensors`` exists. Every ``(<x>_)inputs/outputs.safetensors`` pair is a case: the
inputs hold ``images`` ``[B, S, 3, H, W]``; every tensor of the outputs file is compared. Sizes,
frame counts and image sizes all come from ``config.json`` and the tensors.
"""

from pathlib import Path

import torch
from torch import Tensor

from spa3r_ros.configs.vggt import vggt_config_from_golden
from spa3r_ros.models import constants as K
from spa3r_ros.models.checkpoint import load_checked, read_state_dict
from spa3r_ros.models.pose_encoding import pose_encoding_to_extri_intri
from spa3r_ros.models.vggt.model import VGGT
from spa3r_ros.tools.golden_cases.base import (
    compare_all,
    Comparison,
    golden_config,
    iter_cases,
    load_tensors,
    read_json,
)

KIND = 'vggt'


def detect(folder: Path) -> bool:
    """Whether ``folder`` is a VGGT golden folder."""
    data = golden_config(folder)
    return data is not None and 'aggregator' in data and 'patch_embed_dinov2' in data


def build_model(folder: Path) -> VGGT:
    """The VGGT of ``config.json`` with ``weights.safetensors`` loaded as float32, eval mode."""
    model = VGGT(vggt_config_from_golden(read_json(folder / 'config.json')))
    load_checked(model, read_state_dict(folder / 'weights.safetensors'), dtype=torch.float32)
    return model.eval()


def predict(model: VGGT, images: Tensor) -> dict[str, Tensor]:
    """Every tensor the reference stores, under the reference's names."""
    with torch.no_grad():
        pred = model(images, return_aggregated_tokens=True)
        patch_tokens = model.aggregator.embed_frames(pred[K.PRED_IMAGES])
    out: dict[str, Tensor] = {
        'patch_embed_tokens': patch_tokens.flatten(0, 1),
        'patch_start_idx': torch.tensor(pred[K.PRED_PATCH_START_IDX], dtype=torch.int64),
    }
    for i, tokens in enumerate(pred[K.PRED_AGGREGATED_TOKENS]):
        out[f'aggregated_tokens.{i}'] = tokens
    for key in (
        K.PRED_POSE_ENC,
        K.PRED_DEPTH,
        K.PRED_DEPTH_CONF,
        K.PRED_WORLD_POINTS,
        K.PRED_WORLD_POINTS_CONF,
    ):
        if key in pred:
            out[key] = pred[key]
    if K.PRED_POSE_ENC in pred:
        out[K.PRED_POSE_ENC_LIST] = torch.stack(pred[K.PRED_POSE_ENC_LIST])
        extrinsic, intrinsic = pose_encoding_to_extri_intri(
            pred[K.PRED_POSE_ENC], tuple(images.shape[-2:])
        )
        out[K.PRED_EXTRINSIC], out[K.PRED_INTRINSIC] = extrinsic, intrinsic
    return out


def run(folder: Path) -> list[Comparison]:
    """Rebuild the model and compare every stored case of ``folder``."""
    model = build_model(folder)
    results: list[Comparison] = []
    for case, inputs_path, outputs_path in iter_cases(folder):
        label = f'{folder.name}/{case}'
        reference = load_tensors(outputs_path)
        images = load_tensors(inputs_path)['images'].float()
        results.extend(compare_all(label, predict(model, images), reference))
    return results

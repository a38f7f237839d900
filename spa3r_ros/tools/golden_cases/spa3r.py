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

"""Golden case kind ``spa3r``: a Spa3R folder laid out like ``golden/spa3r_tiny``.

Detection: ``config.json`` has a ``Spa3R_init_kwargs`` section and ``weights.safetensors``
exists. Every ``(<x>_)inputs/outputs.safetensors`` pair is a case, recognised by what its inputs
hold (not by its file name):

* ``latents`` + ``extrinsics`` + ``intrinsics`` + ``image_hw``: the decoder path
  (:meth:`Spa3R.decode`); outputs are compared under the decode keys.
* ``images`` + ``sem_targets``: one training step per masking mode found in the outputs
  (``asym.*`` -> asymmetric, ``sym.*`` -> symmetric), run with the stored ``view_mask``; when a
  ``seed`` is given, the mask drawn by :func:`random_view_mask` after ``torch.manual_seed(seed)``
  is what gets compared as ``view_mask``.
* ``images`` alone: inference (:meth:`Spa3R.encode`): ``latents`` and
  ``spa3r_aggregated_tokens_last``.

All sizes come from ``config.json`` and the tensors.
"""

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from spa3r_ros.configs.spa3r import spa3r_config_from_golden
from spa3r_ros.models.checkpoint import load_checked, read_state_dict
from spa3r_ros.models.spa3r import constants as K
from spa3r_ros.models.spa3r.masking import random_view_mask
from spa3r_ros.models.spa3r.model import Spa3R
from spa3r_ros.tools.golden_cases.base import (
    compare,
    compare_all,
    Comparison,
    golden_config,
    iter_cases,
    load_tensors,
    read_json,
)

KIND = 'spa3r'

#: Output-name prefix of each masking mode -> ``asymmetric_masking``.
MASKING_MODES = {'asym': True, 'sym': False}
#: Name of each aggregator run in the loss outputs (``Spa3RLossOutput.aggregator_last`` key).
AGGREGATOR_RUN_NAMES = {
    'masked': 'aggregator_masked_last',
    'context': 'aggregator_context_last',
    'full': 'aggregator_full_last',
}


def detect(folder: Path) -> bool:
    """Whether ``folder`` is a Spa3R golden folder."""
    data = golden_config(folder)
    return data is not None and 'Spa3R_init_kwargs' in data


def build_model(folder: Path, asymmetric_masking: bool | None = None) -> Spa3R:
    """The Spa3R of ``config.json`` with ``weights.safetensors`` as float32, eval mode."""
    config = spa3r_config_from_golden(read_json(folder / 'config.json'))
    if asymmetric_masking is not None:
        config = dataclasses.replace(config, asymmetric_masking=asymmetric_masking)
    model = Spa3R(config)
    load_checked(model, read_state_dict(folder / 'weights.safetensors'), dtype=torch.float32)
    return model.eval()


def run_decoder(model: Spa3R, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Decoder path outputs under the reference's names."""
    height, width = (int(v) for v in inputs['image_hw'].tolist())
    with torch.no_grad():
        return model.decode(
            inputs['latents'].float(),
            inputs['extrinsics'].float(),
            inputs['intrinsics'].float(),
            (height, width),
        )


def run_predict(model: Spa3R, images: Tensor) -> dict[str, Tensor]:
    """Inference outputs under the reference's names."""
    with torch.no_grad():
        last = model.aggregate_last(images)
    return {'latents': model.encode(images), 'spa3r_aggregated_tokens_last': last}


def run_loss(
    model: Spa3R, inputs: dict[str, Tensor], view_mask: Tensor, prefix: str
) -> dict[str, Tensor]:
    """One training step's outputs, named ``<prefix>.<name>`` like the reference's."""
    batch = {
        K.BATCH_IMAGES: inputs['images'].float(),
        K.BATCH_SEM_TARGETS: inputs['sem_targets'].float(),
    }
    out = model.forward_loss(batch, view_mask=view_mask)
    produced = {
        f'{prefix}.loss.{name.replace("/", "_")}': value.detach()
        for name, value in out.losses.items()
    }
    produced[f'{prefix}.pose_enc'] = out.pose_enc
    produced[f'{prefix}.latents'] = out.latents.detach()
    produced[f'{prefix}.depth_gt'] = out.depth_gt
    produced[f'{prefix}.decoder_output_full'] = out.decoded[K.DECODER_OUTPUT_FULL].detach()
    for run, tokens in out.aggregator_last.items():
        produced[f'{prefix}.{AGGREGATOR_RUN_NAMES[run]}'] = tokens
    return produced


def _loss_case(
    folder: Path, label: str, mask_ratio: float, inputs: dict[str, Tensor], reference
) -> list[Comparison]:
    results = []
    view_mask = reference['view_mask']
    if 'seed' in inputs:
        # Seed right before drawing: building a model would consume random numbers too.
        torch.manual_seed(int(inputs['seed']))
        drawn = random_view_mask(*view_mask.shape, mask_ratio)
        results.append(compare(label, 'view_mask', drawn, view_mask))
    prefixes = sorted({name.split('.', 1)[0] for name in reference if '.' in name})
    unknown = [p for p in prefixes if p not in MASKING_MODES]
    if unknown:
        nan = float('nan')
        note = f'unknown masking mode prefixes {unknown}; known {sorted(MASKING_MODES)}'
        results.append(Comparison(label, '<prefix>', nan, nan, 0.0, 0.0, False, note))
    produced: dict[str, Tensor] = {}
    for prefix in prefixes:
        if prefix in MASKING_MODES:
            model = build_model(folder, asymmetric_masking=MASKING_MODES[prefix])
            produced.update(run_loss(model, inputs, view_mask, prefix))
    rest = {k: v for k, v in reference.items() if k != 'view_mask' or 'seed' not in inputs}
    if 'seed' not in inputs:
        produced['view_mask'] = view_mask  # nothing to draw it from; used as given
    return results + compare_all(label, produced, rest)


def run(folder: Path) -> list[Comparison]:
    """Rebuild the model and compare every stored case of ``folder``."""
    model = build_model(folder)
    results: list[Comparison] = []
    for case, inputs_path, outputs_path in iter_cases(folder):
        label = f'{folder.name}/{case}'
        inputs = load_tensors(inputs_path)
        reference = load_tensors(outputs_path)
        if {'latents', 'extrinsics', 'intrinsics', 'image_hw'} <= set(inputs):
            results.extend(compare_all(label, run_decoder(model, inputs), reference))
        elif {'images', 'sem_targets'} <= set(inputs):
            results.extend(_loss_case(folder, label, model.config.mask_ratio, inputs, reference))
        elif 'images' in inputs:
            produced = run_predict(model, inputs['images'].float())
            results.extend(compare_all(label, produced, reference))
        else:
            nan = float('nan')
            note = f'unrecognised inputs {sorted(inputs)}'
            results.append(Comparison(label, '<inputs>', nan, nan, 0.0, 0.0, False, note))
    return results

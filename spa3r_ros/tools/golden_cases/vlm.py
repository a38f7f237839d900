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

"""Golden case kind for ``golden/spa3_vlm_geometry/``: geometry modules and the tiny full forward.

Two parts (golden README, part C):

* module case (``spa3_vlm_geometry/outputs``): :class:`GeometryInjector` on the stored
  ``image_embeds`` and ``latents``, every intermediate compared (``geo_projected``,
  ``cross_attn_out``, ``ln_out``, ``adaptor_out``, ``gate_out``, ``output``);
* ``full_forward/``: a tiny Qwen2.5-VL built on transformers 5.x from the 4.50-era HF config,
  loaded through the published-layout key mapping, run on the stored inputs of the
  ``one_image`` and ``two_images`` cases. The latents come from a tiny Spa3R (the sibling
  ``spa3r_tiny/config.json`` gives its sizes, as ``run_notes.json`` says; its weights are the
  checkpoint's ``geometry_encoder.spa3r.*``) and are compared too. Without that sibling folder
  the stored ``latents`` are fed in instead, and the report says so.
"""

from pathlib import Path

import torch
from torch import nn

from spa3r_ros.tools.golden_cases.base import (
    compare,
    compare_all,
    Comparison,
    golden_config,
    read_json,
)

KIND = 'spa3_vlm_geometry'
FULL_FORWARD = 'full_forward'
FULL_FORWARD_CASES = ('one_image', 'two_images')
MODULE_OUTPUTS = ('geo_projected', 'cross_attn_out', 'ln_out', 'adaptor_out', 'gate_out', 'output')


def detect(folder: Path) -> bool:
    """Whether ``folder`` is a Spa3-VLM geometry golden folder."""
    data = golden_config(folder)
    return data is not None and 'geom_cross_attention' in data.get('modules', {})


def _load_float32(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, float ones cast to float32 (weights are float16 on disk)."""
    from safetensors.torch import load_file

    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}


def run_module_case(folder: Path) -> list[Comparison]:
    """The geometry modules alone on the stored inputs; one comparison per stored output."""
    from spa3r_ros.configs.vlm import VLMGeometryConfig
    from spa3r_ros.models.vlm.geometry import GeometryInjector

    meta = read_json(folder / 'config.json')
    config = VLMGeometryConfig(
        hidden_size=meta['hidden_size'],
        num_attention_heads=meta['num_attention_heads'],
        spa3r_embed_dim=meta['spa3r_embed_dim'],
        spa3r_num_queries=meta['spa3r_num_queries'],
    )
    injector = GeometryInjector(config)
    injector.load_state_dict(_load_float32(folder / 'weights.safetensors'), strict=True)
    injector.eval()
    inputs = _load_float32(folder / 'inputs.safetensors')
    image_embeds, latents = inputs['image_embeds'], inputs['latents']
    with torch.no_grad():
        got = {'geo_projected': injector.geometry_projector(latents)}
        got['cross_attn_out'] = injector.geom_cross_attention(
            image_embeds[None], got['geo_projected']
        )
        got['ln_out'] = injector.ln(got['cross_attn_out'].squeeze(0))
        got['adaptor_out'] = injector.geometry_adaptor(got['ln_out'])
        got['gate_out'] = injector.geometry_gate(got['ln_out'])
        got['output'] = injector(image_embeds, latents)
    reference = _load_float32(folder / 'outputs.safetensors')
    return compare_all(f'{folder.name}/outputs', got, reference)


def build_geometry_encoder(golden_root: Path) -> nn.Module | None:
    """The tiny Spa3R of ``spa3r_tiny/config.json`` (random weights), or None if absent."""
    config_file = golden_root / 'spa3r_tiny' / 'config.json'
    if not config_file.is_file():
        return None
    from spa3r_ros.configs.spa3r import spa3r_config_from_golden
    from spa3r_ros.models.spa3r.model import Spa3R

    return Spa3R(spa3r_config_from_golden(read_json(config_file)))


def build_full_forward_model(folder: Path, geometry_encoder: nn.Module | None = None):
    """The tiny Spa3-VLM of ``full_forward/``, loaded through the published-layout mapping.

    Args:
        folder: ``golden/spa3_vlm_geometry/full_forward``.
        geometry_encoder: a tiny Spa3R to attach and fill from ``geometry_encoder.spa3r.*``.

    Returns:
        A float32 :class:`~spa3r_ros.models.vlm.model.Spa3VLM` in eval mode.
    """
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.models.vlm.checkpoint import load_published_weights
    from spa3r_ros.models.vlm.model import Spa3VLM

    config = Qwen2_5_VLConfig(**read_json(folder / 'config.json'))
    model = Spa3VLM(config, geometry_encoder=geometry_encoder)
    load_published_weights(
        model,
        _load_float32(folder / 'weights.safetensors'),
        require_geometry_encoder=geometry_encoder is not None,
    )
    return model.eval()


def run_full_forward_case(
    folder: Path, geometry_encoder: nn.Module | None = None
) -> list[Comparison]:
    """The whole tiny forward for both stored cases.

    Args:
        folder: ``golden/spa3_vlm_geometry/full_forward``.
        geometry_encoder: a tiny Spa3R; without it the stored latents are fed in.

    Returns:
        Comparisons of image features, latents (with an encoder), injected features, positions,
        rope deltas and logits.
    """
    model = build_full_forward_model(folder, geometry_encoder)
    inputs = _load_float32(folder / 'inputs.safetensors')
    reference = _load_float32(folder / 'outputs.safetensors')
    out: list[Comparison] = []
    for case in FULL_FORWARD_CASES:
        label = f'{folder.parent.name}/{FULL_FORWARD}/{case}'
        ids = inputs[f'{case}.input_ids']
        grid = inputs[f'{case}.image_grid_thw']
        pixels = inputs[f'{case}.pixel_values']
        with torch.no_grad():
            features = model.image_features(pixels, grid)
            if geometry_encoder is not None:
                latents = model.encode_geometry(inputs[f'{case}.geometry_encoder_inputs'])
                out.append(compare(label, 'latents', latents, reference[f'{case}.latents']))
            else:
                latents = reference[f'{case}.latents']
            injected = model.prepare_image_embeds(
                ids, image_features=features, geometry_latents=latents
            )
            positions, deltas = model.rope_positions(ids, grid)
            logits = model(
                ids, pixel_values=pixels, image_grid_thw=grid, geometry_latents=latents
            ).logits
        got = {
            'image_embeds': torch.cat(features),
            'image_embeds_with_geometry': torch.cat(injected),
            'position_ids': positions,
            'rope_deltas': deltas,
            'logits': logits,
        }
        note = '' if geometry_encoder is not None else 'stored latents (no spa3r_tiny/ sibling)'
        for name, value in got.items():
            c = compare(label, name, value, reference[f'{case}.{name}'])
            out.append(c if not note else Comparison(**{**c.__dict__, 'note': note}))
    return out


def run(folder: Path, *, use_encoder: bool = True) -> list[Comparison]:
    """Every comparison of a ``spa3_vlm_geometry`` folder.

    Args:
        folder: the golden ``spa3_vlm_geometry`` folder.
        use_encoder: compute the latents with a tiny Spa3R when its config is available (False:
            feed the stored latents, which checks the VLM side alone).

    Returns:
        A list of :class:`Comparison`.
    """
    folder = Path(folder)
    encoder = build_geometry_encoder(folder.parent) if use_encoder else None
    return run_module_case(folder) + run_full_forward_case(folder / FULL_FORWARD, encoder)

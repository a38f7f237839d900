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

"""Golden case for ``golden/spa3_vlm_geometry/``: the geometry modules and the tiny full forward.

Two parts (golden README, part C):

* module case: :class:`GeometryInjector` on the stored ``image_embeds`` and ``latents``, every
  intermediate compared (``geo_projected``, ``cross_attn_out``, ``ln_out``, ``adaptor_out``,
  ``gate_out``, ``output``);
* ``full_forward/``: a tiny Qwen2.5-VL built on transformers 5.x from the 4.50-era HF config,
  loaded through the published-layout key mapping, run on the stored inputs for the
  ``one_image`` and ``two_images`` cases. Latents come from the attached geometry encoder when
  one is given, else the stored ``latents`` output is fed in (the Spa3R encoder is checked by its
  own case).

Each comparison is a :class:`Comparison`; :func:`run` returns them all and
:func:`check` raises on the first that fails (the golden README's tolerances).
"""

from collections.abc import Callable
from dataclasses import dataclass
import json
from pathlib import Path

import torch

FOLDER = 'spa3_vlm_geometry'

# Golden README tolerances for float tensors; int/bool tensors must match exactly.
RTOL = 1e-4
ATOL = 1e-4
FULL_FORWARD_CASES = ('one_image', 'two_images')


@dataclass(frozen=True)
class Comparison:
    """One produced tensor against its golden value.

    Attributes:
        name: ``<part>/<tensor>``, e.g. ``full_forward/one_image.logits``.
        got: what our code produced.
        expected: the golden tensor.
        rtol: relative tolerance (ignored for exact comparisons).
        atol: absolute tolerance (ignored for exact comparisons).
    """

    name: str
    got: torch.Tensor
    expected: torch.Tensor
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def exact(self) -> bool:
        """Integer and bool tensors are compared exactly."""
        return not self.expected.is_floating_point()

    @property
    def max_abs_error(self) -> float:
        """Largest absolute difference (inf when the shapes differ)."""
        if self.got.shape != self.expected.shape:
            return float('inf')
        return (self.got.double() - self.expected.double()).abs().max().item()

    def passed(self) -> bool:
        """Whether the tensors agree within the tolerances."""
        if self.got.shape != self.expected.shape:
            return False
        if self.exact:
            return torch.equal(self.got.to(self.expected.dtype), self.expected)
        return torch.allclose(self.got.float(), self.expected.float(), self.rtol, self.atol)


def _load_float32(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, float ones cast to float32 (weights are float16 on disk)."""
    from safetensors.torch import load_file

    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}


def run_module_case(folder: Path) -> list[Comparison]:
    """The geometry modules alone on the stored inputs.

    Args:
        folder: ``golden/spa3_vlm_geometry``.

    Returns:
        One comparison per stored output.
    """
    from spa3r_ros.configs.vlm import VLMGeometryConfig
    from spa3r_ros.models.vlm.geometry import GeometryInjector

    meta = json.loads((folder / 'config.json').read_text())
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
    expected = _load_float32(folder / 'outputs.safetensors')
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
    return [Comparison(f'module/{k}', got[k], expected[k]) for k in sorted(expected)]


def build_full_forward_model(folder: Path, geometry_encoder: torch.nn.Module | None = None):
    """The tiny Spa3-VLM of ``full_forward/``, loaded through the published-layout mapping.

    Args:
        folder: ``golden/spa3_vlm_geometry/full_forward``.
        geometry_encoder: a tiny Spa3R to attach and fill from ``geometry_encoder.spa3r.*``.

    Returns:
        A float32 :class:`Spa3VLM` in eval mode.
    """
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.models.vlm.checkpoint import load_published_weights
    from spa3r_ros.models.vlm.model import Spa3VLM

    config = Qwen2_5_VLConfig(**json.loads((folder / 'config.json').read_text()))
    model = Spa3VLM(config, geometry_encoder=geometry_encoder)
    load_published_weights(
        model,
        _load_float32(folder / 'weights.safetensors'),
        require_geometry_encoder=geometry_encoder is not None,
    )
    return model.eval()


def run_full_forward_case(
    folder: Path, geometry_encoder: torch.nn.Module | None = None
) -> list[Comparison]:
    """The whole tiny forward for both stored cases.

    Args:
        folder: ``golden/spa3_vlm_geometry/full_forward``.
        geometry_encoder: optional tiny Spa3R; without it the stored latents are used.

    Returns:
        Comparisons of image features, latents (with an encoder), injected features, positions,
        rope deltas and logits.
    """
    model = build_full_forward_model(folder, geometry_encoder)
    inputs = _load_float32(folder / 'inputs.safetensors')
    expected = _load_float32(folder / 'outputs.safetensors')
    out: list[Comparison] = []
    for case in FULL_FORWARD_CASES:
        ids = inputs[f'{case}.input_ids']
        grid = inputs[f'{case}.image_grid_thw']
        pixels = inputs[f'{case}.pixel_values']
        with torch.no_grad():
            features = model.image_features(pixels, grid)
            if geometry_encoder is not None:
                latents = model.encode_geometry(inputs[f'{case}.geometry_encoder_inputs'])
                out.append(
                    Comparison(
                        f'full_forward/{case}.latents', latents, expected[f'{case}.latents']
                    )
                )
            else:
                latents = expected[f'{case}.latents']
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
        out += [
            Comparison(f'full_forward/{case}.{name}', value, expected[f'{case}.{name}'])
            for name, value in got.items()
        ]
    return out


def run(golden_dir: Path, geometry_encoder_factory: Callable[[], torch.nn.Module] | None = None):
    """Every comparison of this folder.

    Args:
        golden_dir: the golden root (holding ``spa3_vlm_geometry/``).
        geometry_encoder_factory: builds a tiny Spa3R for ``full_forward`` (None: stored latents).

    Returns:
        A list of :class:`Comparison`.
    """
    # The reference ran with 2 threads; conv/GEMM reductions depend on the thread count.
    torch.set_num_threads(2)
    folder = Path(golden_dir) / FOLDER
    encoder = geometry_encoder_factory() if geometry_encoder_factory is not None else None
    return run_module_case(folder) + run_full_forward_case(folder / 'full_forward', encoder)


def check(comparisons: list[Comparison]) -> None:
    """Raise ``AssertionError`` naming every comparison that fails."""
    failed = [
        f'{c.name} (max abs error {c.max_abs_error:.3g})' for c in comparisons if not c.passed()
    ]
    if failed:
        raise AssertionError('golden mismatch: ' + ', '.join(failed))

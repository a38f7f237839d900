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
"""The no-geometry ablation switch (``Spa3VLM.use_geometry``, ``spa3r eval --no-geometry``).

A tiny random Spa3-VLM with a non-zero adaptor (so geometry visibly changes its logits): with
the switch off, its logits equal those of the same weights given no latent and those of a copy
whose adaptor output is zeroed, and the Spa3R encoder does not run, in the model and in the
scene engine.
"""

import copy

import numpy as np
import pytest
import spa3r_test_tiny_vlm as tiny
import torch

from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.models.vlm.tiny import build_tiny_qwen_tokenizer, special_token_ids


class CountingEncoder(tiny.MeanPoolEncoder):
    """The stand-in encoder, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().encode(images)


@pytest.fixture()
def setup():
    tokenizer = build_tiny_qwen_tokenizer()
    torch.manual_seed(0)
    encoder = CountingEncoder()
    model = tiny.build(special_token_ids(tokenizer), len(tokenizer), geometry_encoder=encoder)
    generator = Spa3VLMGenerator(model, tokenizer)
    frames = tiny.make_frames(2)
    ids = torch.cat([generator.prefix_ids(frames), generator.suffix_ids('Where is it?')], dim=1)
    pixels = torch.cat([f.pixel_values for f in frames])
    grids = torch.tensor([f.grid_thw for f in frames])
    images = torch.rand(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(3))
    return model, encoder, ids, pixels, grids, images


def _logits(model, ids, pixels, grids, **geometry) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, pixel_values=pixels, image_grid_thw=grids, **geometry).logits


def test_switch_off_equals_a_model_without_geometry(setup):
    model, encoder, ids, pixels, grids, images = setup
    latents = encoder.encode(images)
    with_geometry = _logits(model, ids, pixels, grids, geometry_latents=latents)
    never_had_geometry = _logits(model, ids, pixels, grids)
    # The tiny adaptor is not zero: geometry changes the logits, so the switch can be seen.
    assert not torch.allclose(with_geometry, never_had_geometry)

    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        zeroed.injector.geometry_adaptor[2].weight.zero_()
        zeroed.injector.geometry_adaptor[2].bias.zero_()
    adaptor_zeroed = _logits(zeroed, ids, pixels, grids, geometry_latents=latents)

    model.use_geometry = False
    switched_off = _logits(model, ids, pixels, grids, geometry_latents=latents)
    assert torch.equal(switched_off, never_had_geometry)
    torch.testing.assert_close(switched_off, adaptor_zeroed)
    # Through the encoder path too: the frames are given, the logits do not see them.
    calls = encoder.calls
    via_frames = _logits(model, ids, pixels, grids, geometry_encoder_inputs=images)
    assert torch.equal(via_frames, never_had_geometry)
    assert encoder.calls == calls

    model.use_geometry = True
    assert torch.equal(_logits(model, ids, pixels, grids, geometry_latents=latents), with_geometry)


def test_switch_off_skips_the_encoder_and_gives_a_zero_latent(setup):
    model, encoder, _, _, _, images = setup
    on = model.encode_geometry(images)
    assert encoder.calls == 1 and on.abs().sum() > 0
    model.use_geometry = False
    off = model.encode_geometry(images)
    assert encoder.calls == 1
    assert off.shape == on.shape and off.dtype == on.dtype
    assert not off.any()


def test_switch_off_image_tokens_reach_the_language_model_untouched(setup):
    model, encoder, ids, pixels, grids, images = setup
    features = model.image_features(pixels, grids)
    latents = encoder.encode(images)
    model.use_geometry = False
    out = model.inject_geometry(features, latents, [2])
    assert all(a is b for a, b in zip(out, features))
    model.use_geometry = True
    out = model.inject_geometry(features, latents, [2])
    assert not torch.equal(out[0], features[0])


def test_engine_runs_no_backbone_or_encoder_without_geometry(monkeypatch):
    from spa3r_ros.configs.node import QueryConfig
    from spa3r_ros.configs.scene import SceneConfig
    from spa3r_ros.core.image_decode import DecodedImage
    from spa3r_ros.models.bundle import build_tiny_random
    from spa3r_ros.models.vggt.frame_cache import PatchTokenCache
    from spa3r_ros.scene.engine import SceneEngine

    models = build_tiny_random(seed=0)  # its own: the shared fixture must keep geometry on
    models.vlm.use_geometry = False
    calls = []
    monkeypatch.setattr(
        type(models.spa3r), 'encode', lambda *a, **k: calls.append('encode') or None
    )
    monkeypatch.setattr(
        PatchTokenCache, 'patch_tokens', lambda *a, **k: calls.append('backbone') or None
    )
    with SceneEngine(models, SceneConfig(), QueryConfig()) as engine:
        for index in range(3):
            pixels = np.random.default_rng(index).integers(0, 256, (48, 64, 3), dtype=np.uint8)
            engine.add_frame(1.0 + index, '/camera', DecodedImage('color', pixels))
        engine.flush()
        state = engine.snapshot()
    assert state is not None and state.num_frames >= 1
    assert calls == []
    geometry = models.vlm.geometry_config
    assert tuple(state.latents.shape) == (1, geometry.spa3r_num_queries, geometry.spa3r_embed_dim)
    assert not state.latents.any()

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

"""The memory-per-frame formula (README) against the tensors a running engine really keeps."""

import numpy as np
import pytest

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.scene import memory
from spa3r_ros.scene.engine import SceneEngine


def _kv_bytes(cache) -> int:
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


@pytest.mark.parametrize('camera', [(640, 480), (300, 400)])
def test_formula_matches_the_engine_s_tensors(tiny_models, camera):
    width, height = camera
    engine = SceneEngine(tiny_models, SceneConfig(min_update_interval_sec=0.0), QueryConfig())
    rng = np.random.default_rng(3)
    with engine:
        for stamp in range(3):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            engine.add_frame(float(stamp), 'cam', DecodedImage('color', pixels))
        state = engine.flush(timeout=60)
    expected = memory.frame_memory(memory.dims_of(tiny_models), camera)
    frame = state.keyframes[0]
    # Host: what the engine keeps per frame, and the policy's thumbnail.
    assert frame.rgb.nbytes == expected.rgb
    assert (frame.rgb.shape[1], frame.rgb.shape[0]) == expected.model_size
    pixel_values = frame.frame_input.pixel_values
    assert pixel_values.nbytes == expected.qwen_pixels
    assert engine._policy.keyframes[0].thumbnail.nbytes == expected.thumbnail
    # Device: one entry of each per-frame cache.
    patch_entry = next(iter(engine._patch_cache._store.values()))
    assert patch_entry.nbytes == expected.patch_tokens
    vision_entry = engine._generator.vision_cache._entries[frame.seq]
    assert vision_entry.shape[0] == expected.vision_tokens
    assert vision_entry.nbytes == expected.vision_cache
    # The prefix: per-token KV bytes times the tokens one more frame adds to the prompt.
    generator = engine._generator
    prefix, _ = generator.scene_prefix(state.version, state.frame_inputs, state.latents)
    per_token = _kv_bytes(prefix.past_key_values) // prefix.input_ids.shape[1]
    tokens = (
        generator.prefix_ids(state.frame_inputs[:2]).shape[1]
        - generator.prefix_ids(state.frame_inputs[:1]).shape[1]
    )
    assert per_token * tokens == expected.prefix_kv


def test_official_dims_and_the_printed_table(capsys):
    dims = memory.official_dims()
    assert (dims.pixels.geometry_width, dims.backbone_width, dims.dtype_bytes) == (518, 1024, 2)
    four_by_three = memory.frame_memory(dims, (640, 480))
    # 518 x 392 at the geometry branch; Qwen crops to 504 x 392: 36 x 28 patches, 252 tokens.
    assert four_by_three.model_size == (518, 392) and four_by_three.vision_tokens == 252
    assert four_by_three.rgb == 518 * 392 * 3
    assert four_by_three.qwen_pixels == 36 * 28 * 1176 * 4
    assert four_by_three.prefix_kv == (252 + 2) * 36 * 2 * 2 * 128 * 2
    assert memory.main([]) == 0
    printed = capsys.readouterr().out
    assert '| official (bf16) | 640x480 | 518x392 | 252 | MiB |' in printed
    assert '| tiny-random (fp32) | 640x480 |' in printed

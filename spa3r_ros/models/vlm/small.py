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

"""The ``small`` architecture: a Spa3-VLM sized to be trained from scratch on two CPU cores.

It is what ``scripts/train_synthetic.sh`` trains into the ``synthetic-small`` preset. Same module
types and checkpoint layout as the official model (Qwen2.5-VL + Spa3R on a VGGT aggregator), only
narrower and shallower; the byte-level tokenizer of the tiny preset (see :mod:`.tiny`).

Why these sizes (the training budget is about an hour of one CPU core per model, so that the
recipe and its no-geometry ablation run side by side on a 2-core machine):

* language model 128 wide, 4 layers (head 32, two key/value heads): wide enough to hold what the
  questions ask (category, family, units), small enough for about 4 training samples/s of
  ~400 tokens on one core (measured: 14,400 samples in 55 min, frames and all);
* vision tower 64 wide, 2 layers, 14 px patches merged 2x2: a 140x112 frame gives 20 image
  tokens, so 8 frames stay under 200 tokens;
* Spa3R 64 wide with 16 latent queries on a 2-step, 48-wide VGGT aggregator over 112 px frames.

Byte-level tokens instead of Qwen's 151k-token BPE: no file to download, an embedding table of
278 rows instead of 151k (which alone would be 39 M parameters at width 128 and train only the
rows the questions use), and digits are single tokens in both, so numbers are written the same way.
"""

from spa3r_ros.configs.spa3r import Spa3RConfig

#: Width and number of the small Spa3R's latent tokens.
SMALL_LATENT_DIM = 64
SMALL_NUM_QUERIES = 16
#: Geometry frames: 112 px wide (8 patches), height from the aspect ratio (84 for 4:3).
SMALL_GEOMETRY_WIDTH = 112
#: Qwen pixel budget: a 4:3 frame becomes 140x112 (10x8 patches, 5x4 = 20 merged tokens).
SMALL_MIN_PIXELS = 12544
SMALL_MAX_PIXELS = 15680


def small_qwen_config_dict(special: dict[str, int], vocab_size: int) -> dict:
    """The small Qwen2.5-VL + geometry config (flat 4.50-era layout, like the tiny one).

    Args:
        special: special token ids (:func:`spa3r_ros.models.vlm.tiny.special_token_ids`).
        vocab_size: the tokenizer's size.
    """
    from spa3r_ros.models.vlm.tiny import tiny_qwen_config_dict

    config = tiny_qwen_config_dict(
        special, vocab_size, latent_dim=SMALL_LATENT_DIM, num_queries=SMALL_NUM_QUERIES
    )
    config.update(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        # Multimodal RoPE sections (time, height, width) sum to half the head width (32 / 2),
        # in Qwen2.5-VL's proportions (16, 24, 24 of 64).
        rope_scaling={'type': 'default', 'rope_type': 'default', 'mrope_section': [4, 6, 6]},
    )
    config['vision_config'] = dict(
        config['vision_config'],
        depth=2,
        hidden_size=64,
        intermediate_size=192,
        num_heads=4,
        out_hidden_size=128,
        window_size=112,
        fullatt_block_indexes=[1],
    )
    return config


def small_spa3r_config() -> Spa3RConfig:
    """The small Spa3R: 64 wide, 16 queries, 2 encoder + 2 decoder layers, 48-wide VGGT."""
    from spa3r_ros.models.vlm.tiny import spa3r_config_on_small_vggt

    return spa3r_config_on_small_vggt(
        vggt_width=48,
        vggt_heads=4,
        patch_embed_size=SMALL_GEOMETRY_WIDTH,
        latent_dim=SMALL_LATENT_DIM,
        num_queries=SMALL_NUM_QUERIES,
        layers=2,
        sem_dim=32,
    )

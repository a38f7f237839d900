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

"""Tiny random Spa3-VLM parts built in memory: a byte-level Qwen tokenizer and small configs.

These back the ``tiny-random`` model preset (tests, CPU-only machines, demos) and the tests. No
file and no network is touched; the same seed gives the same weights. An untrained model's answers
mean nothing: the preset exists to exercise the whole pipeline, not to answer questions.

Tokenizer: byte-level BPE without merges. Every byte of the text is one token, so any text
round-trips exactly, digits and option letters are single tokens (as in Qwen's real tokenizer),
and the vocabulary stays small: 256 bytes, then Qwen2.5-VL's 22 added tokens in Qwen's order
(14 special, 8 plain), so user-text handling is tested against the real token list.
"""

from dataclasses import replace

from spa3r_ros.configs.spa3r import Spa3RConfig
from spa3r_ros.configs.vggt import AggregatorConfig, DinoV2Config, VGGTConfig

# Qwen2.5-VL's special tokens, in the order the real vocabulary lists them (ids 151643-151656).
QWEN_SPECIAL_TOKENS = (
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|object_ref_start|>',
    '<|object_ref_end|>',
    '<|box_start|>',
    '<|box_end|>',
    '<|quad_start|>',
    '<|quad_end|>',
    '<|vision_start|>',
    '<|vision_end|>',
    '<|vision_pad|>',
    '<|image_pad|>',
    '<|video_pad|>',
)

# The rest of Qwen2.5-VL's added tokens (ids 151657-151664): matched in text like the special
# ones, but not flagged special (so ``skip_special_tokens`` keeps them).
QWEN_PLAIN_ADDED_TOKENS = (
    '<tool_call>',
    '</tool_call>',
    '<|fim_prefix|>',
    '<|fim_middle|>',
    '<|fim_suffix|>',
    '<|fim_pad|>',
    '<|repo_name|>',
    '<|file_sep|>',
)

# Width and number of the tiny Spa3R's latent tokens (the official model: 768 x 256).
TINY_LATENT_DIM = 32
TINY_NUM_QUERIES = 8
# Geometry frames of the tiny preset: 56 px wide (4 patches of 14), height from the aspect ratio.
TINY_GEOMETRY_WIDTH = 56


def build_tiny_qwen_tokenizer():
    """A byte-level tokenizer: ids 0-255 are bytes, Qwen2.5-VL's added tokens follow.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<|im_end|>`` as EOS and ``<|endoftext|>`` as pad.
    """
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, Tokenizer
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: i for i, symbol in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    backend.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in QWEN_PLAIN_ADDED_TOKENS]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token='<|im_end|>', pad_token='<|endoftext|>'
    )


def special_token_ids(tokenizer) -> dict[str, int]:
    """Ids of the special tokens a Qwen2.5-VL config needs, as config field names."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        'image_token_id': ids('<|image_pad|>'),
        'video_token_id': ids('<|video_pad|>'),
        'vision_start_token_id': ids('<|vision_start|>'),
        'vision_end_token_id': ids('<|vision_end|>'),
        'eos_token_id': ids('<|im_end|>'),
        'pad_token_id': ids('<|endoftext|>'),
    }


def tiny_qwen_config_dict(
    special: dict[str, int],
    vocab_size: int,
    *,
    latent_dim: int = TINY_LATENT_DIM,
    num_queries: int = TINY_NUM_QUERIES,
) -> dict:
    """A tiny Qwen2.5-VL + geometry config in the 4.50-era flat layout (as published ones are).

    Args:
        special: from :func:`special_token_ids`.
        vocab_size: the tokenizer's size (``len(tokenizer)``).
        latent_dim: width of the scene latent the geometry modules read.
        num_queries: number of latent tokens.

    Returns:
        A dict that ``Qwen2_5_VLConfig(**d)`` accepts (Spa3-VLM fields included).
    """
    return {
        'model_type': 'qwen2_5_vl',
        'architectures': ['Spa3_VLMForConditionalGeneration'],
        'vocab_size': vocab_size,
        'hidden_size': 32,
        'intermediate_size': 64,
        'num_hidden_layers': 2,
        'num_attention_heads': 4,
        'num_key_value_heads': 2,
        'max_position_embeddings': 4096,
        'rope_theta': 10000.0,
        'rope_scaling': {'type': 'default', 'rope_type': 'default', 'mrope_section': [1, 1, 2]},
        'rms_norm_eps': 1e-6,
        'tie_word_embeddings': False,
        'use_cache': True,
        'bos_token_id': special['pad_token_id'],
        'eos_token_id': special['eos_token_id'],
        'image_token_id': special['image_token_id'],
        'video_token_id': special['video_token_id'],
        'vision_start_token_id': special['vision_start_token_id'],
        'vision_end_token_id': special['vision_end_token_id'],
        'vision_config': {
            'depth': 2,
            'hidden_size': 16,
            'intermediate_size': 32,
            'num_heads': 2,
            'out_hidden_size': 32,
            'patch_size': 14,
            'spatial_merge_size': 2,
            'temporal_patch_size': 2,
            'window_size': 56,
            'fullatt_block_indexes': [1],
            'tokens_per_second': 2,
            'in_channels': 3,
        },
        'use_geometry_encoder': True,
        'geometry_encoder_type': 'spa3r',
        'spa3r_embed_dim': latent_dim,
        'spa3r_num_queries': num_queries,
    }


def tiny_spa3r_config() -> Spa3RConfig:
    """A tiny Spa3R (32 wide, 8 queries, 1 + 1 layers) on a tiny RMS-q/k VGGT aggregator.

    Only the parts ``Spa3R.encode`` runs are built (no camera or DPT heads): the preset is for
    inference.
    """
    return spa3r_config_on_small_vggt(
        vggt_width=32,
        vggt_heads=2,
        patch_embed_size=70,
        latent_dim=TINY_LATENT_DIM,
        num_queries=TINY_NUM_QUERIES,
        layers=1,
        sem_dim=16,
    )


def spa3r_config_on_small_vggt(
    *,
    vggt_width: int,
    vggt_heads: int,
    patch_embed_size: int,
    latent_dim: int,
    num_queries: int,
    layers: int,
    sem_dim: int,
) -> Spa3RConfig:
    """A Spa3R on a small RMS-q/k VGGT aggregator (one patch-embed block, two depth steps).

    No VGGT camera or DPT heads are built (``Spa3R.encode`` does not run them; PSFM training adds
    seeded ones, :func:`spa3r_ros.training.psfm.training_spa3r_config`).

    Args:
        vggt_width: width of the aggregator (its output is twice that: frame + global).
        vggt_heads: attention heads of the aggregator and its patch embed.
        patch_embed_size: the patch embed's position-embedding image size (pixels).
        latent_dim: width of the Spa3R latents, encoder and decoder.
        num_queries: latent tokens per scene.
        layers: encoder and decoder blocks (each).
        sem_dim: width of the semantic targets (the PSFM teacher's width).
    """
    dino = DinoV2Config(
        img_size=patch_embed_size,
        patch_size=14,
        embed_dim=vggt_width,
        depth=1,
        num_heads=vggt_heads,
        num_register_tokens=4,
    )
    aggregator = AggregatorConfig(
        embed_dim=vggt_width,
        depth=2,
        num_heads=vggt_heads,
        num_register_tokens=4,
        global_qk_norm='rms',
        patch_embed=dino,
    )
    vggt = replace(
        VGGTConfig(enable_camera=False, enable_point=False, enable_depth=False),
        aggregator=aggregator,
    )
    return Spa3RConfig(
        embed_dim=latent_dim,
        num_queries=num_queries,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        num_register_tokens=4,
        aggregator_dim=2 * aggregator.embed_dim,
        sem_dim=sem_dim,
        patch_size=14,
        vggt=vggt,
    )


def randomize_adaptor(model) -> None:
    """Undo the zero init of a Spa3VLM adaptor's last layer, so geometry changes the logits.

    The reference zero-initialises it (an untrained adaptor adds nothing); a random tiny model
    would then ignore its geometry, and tests of the geometry path could not fail.
    """
    import torch

    with torch.no_grad():
        last = model.injector.geometry_adaptor[2]
        last.weight.normal_(0.0, 0.5)
        last.bias.normal_(0.0, 0.5)

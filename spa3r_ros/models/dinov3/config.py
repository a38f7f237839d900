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

"""DINOv3 ViT configurations: the reference's ViT-L/16 teacher and a tiny random stand-in.

The reference (hustvl/Spa3R ``spa3r/models/spa3r.py``) loads ``torch.hub.load(
'facebookresearch/dinov3', 'dinov3_vitl16')``; that hub entry builds a ``DinoVisionTransformer``
with patch 16, 224 px, width 1024, 24 blocks, 16 heads, MLP ratio 4, 4 storage tokens, RoPE base
100 with ``normalize_coords='separate'`` and ``rescale_coords=2`` (fp32 periods), LayerScale
(init 1e-5), ``layernormbf16`` norms (LayerNorm, eps 1e-5) and ``mask_k_bias`` (the key part of
the qkv bias is multiplied by a zero mask). The same model in transformers' terms is a
``DINOv3ViTConfig`` with ``key_bias=False`` (a masked key bias is no bias) and
``pos_embed_rescale=2.0``.

Spec: ``../shared/docs/reference/spa3r_spec.md`` 2.6 and 2.8.
"""

from transformers import DINOv3ViTConfig

#: Side of the square image the reference feeds the teacher (pixels).
DINOV3_IMAGE_SIZE = 224
#: ImageNet normalisation the reference applies before the teacher (RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


#: The constructor arguments the ``dinov3_vitl16`` hub entry passes to ``DinoVisionTransformer``
#: (facebookresearch/dinov3 ``dinov3/hub/backbones.py``, LVD-1689M weights).
DINOV3_VITL16_HUB_KWARGS = {
    'img_size': DINOV3_IMAGE_SIZE,
    'patch_size': 16,
    'in_chans': 3,
    'pos_embed_rope_base': 100.0,
    'pos_embed_rope_normalize_coords': 'separate',
    'pos_embed_rope_rescale_coords': 2.0,
    'pos_embed_rope_dtype': 'fp32',
    'embed_dim': 1024,
    'depth': 24,
    'num_heads': 16,
    'ffn_ratio': 4.0,
    'qkv_bias': True,
    'drop_path_rate': 0.0,
    'layerscale_init': 1.0e-05,
    'norm_layer': 'layernormbf16',
    'ffn_layer': 'mlp',
    'ffn_bias': True,
    'proj_bias': True,
    'n_storage_tokens': 4,
    'mask_k_bias': True,
    'untie_global_and_local_cls_norm': False,
}


def dinov3_vitl16_config() -> DINOv3ViTConfig:
    """The ``dinov3_vitl16`` hub model as a transformers config (about 303 M parameters)."""
    return config_from_hub_kwargs(DINOV3_VITL16_HUB_KWARGS)


def tiny_hub_kwargs(hidden_size: int = 16, *, num_layers: int = 2, num_heads: int = 2) -> dict:
    """ViT-L/16 constructor arguments with a tiny width and depth (everything else the same).

    Raises:
        ValueError: a width the RoPE layout cannot split (``hidden_size / num_heads`` must be a
            multiple of 4).
    """
    if hidden_size % num_heads or (hidden_size // num_heads) % 4:
        raise ValueError(
            f'hidden_size {hidden_size} / num_heads {num_heads} must be a multiple of 4 '
            '(DINOv3 RoPE splits each head into 4 parts)'
        )
    return {
        **DINOV3_VITL16_HUB_KWARGS,
        'embed_dim': hidden_size,
        'depth': num_layers,
        'num_heads': num_heads,
    }


def tiny_dinov3_config(
    hidden_size: int = 16, *, num_layers: int = 2, num_heads: int = 2
) -> DINOv3ViTConfig:
    """A tiny DINOv3 of the ViT-L/16 kind (same patch, image size, tokens, RoPE, norms).

    Args:
        hidden_size: the feature width; set it to the Spa3R preset's ``sem_dim`` (the tiny
            preset's is 16).
        num_layers: number of transformer blocks.
        num_heads: attention heads.

    Raises:
        ValueError: see :func:`tiny_hub_kwargs`.
    """
    return config_from_hub_kwargs(
        tiny_hub_kwargs(hidden_size, num_layers=num_layers, num_heads=num_heads)
    )


# DinoVisionTransformer norm kinds that are a LayerNorm, with their eps.
_HUB_LAYER_NORMS = {'layernorm': 1e-6, 'layernormbf16': 1e-5}
# Constructor arguments of the reference's DinoVisionTransformer that do not change the maths of
# a forward pass in eval mode without masks, or that the translation reads itself.
_HUB_DEFAULTS = {
    'img_size': 224,
    'patch_size': 16,
    'in_chans': 3,
    'pos_embed_rope_base': 100.0,
    'pos_embed_rope_min_period': None,
    'pos_embed_rope_max_period': None,
    'pos_embed_rope_normalize_coords': 'separate',
    'pos_embed_rope_shift_coords': None,
    'pos_embed_rope_jitter_coords': None,
    'pos_embed_rope_rescale_coords': None,
    'pos_embed_rope_dtype': 'bf16',
    'embed_dim': 768,
    'depth': 12,
    'num_heads': 12,
    'ffn_ratio': 4.0,
    'qkv_bias': True,
    'drop_path_rate': 0.0,
    'layerscale_init': None,
    'norm_layer': 'layernorm',
    'ffn_layer': 'mlp',
    'ffn_bias': True,
    'proj_bias': True,
    'n_storage_tokens': 0,
    'mask_k_bias': False,
    'untie_cls_and_patch_norms': False,
    'untie_global_and_local_cls_norm': False,
}


def config_from_hub_kwargs(kwargs: dict) -> DINOv3ViTConfig:
    """Translate facebookresearch/dinov3 ``DinoVisionTransformer(**kwargs)`` into a config.

    Only the ViT-L/16 kind is supported: LayerNorm norms, a GELU MLP, LayerScale, RoPE with a
    base and ``'separate'`` coordinate normalisation, fp32 RoPE, no untied norms, and either
    ``mask_k_bias`` or no qkv bias.

    Args:
        kwargs: the constructor's keyword arguments (missing ones take the reference defaults).

    Returns:
        The equivalent ``DINOv3ViTConfig``.

    Raises:
        ValueError: an unknown argument or a kind this translation does not cover.
    """
    unknown = sorted(set(kwargs) - set(_HUB_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown DinoVisionTransformer arguments: {unknown}')
    args = {**_HUB_DEFAULTS, **kwargs}
    unsupported = []
    if args['norm_layer'] not in _HUB_LAYER_NORMS:
        unsupported.append(f'norm_layer={args["norm_layer"]!r}')
    if args['ffn_layer'] != 'mlp':
        unsupported.append(f'ffn_layer={args["ffn_layer"]!r}')
    if not args['layerscale_init']:
        unsupported.append('no LayerScale')
    if args['pos_embed_rope_base'] is None or args['pos_embed_rope_min_period'] is not None:
        unsupported.append('RoPE by min/max period')
    if args['pos_embed_rope_normalize_coords'] != 'separate':
        unsupported.append(f'normalize_coords={args["pos_embed_rope_normalize_coords"]!r}')
    if args['pos_embed_rope_dtype'] != 'fp32':
        unsupported.append(f'pos_embed_rope_dtype={args["pos_embed_rope_dtype"]!r}')
    if args['untie_cls_and_patch_norms'] or args['untie_global_and_local_cls_norm']:
        unsupported.append('untied norms')
    if args['qkv_bias'] and not args['mask_k_bias']:
        unsupported.append('an unmasked key bias')
    if args['in_chans'] != 3:
        unsupported.append(f'in_chans={args["in_chans"]}')
    if unsupported:
        raise ValueError(f'DinoVisionTransformer kind not supported: {", ".join(unsupported)}')
    return DINOv3ViTConfig(
        patch_size=args['patch_size'],
        image_size=args['img_size'],
        hidden_size=args['embed_dim'],
        intermediate_size=int(args['embed_dim'] * args['ffn_ratio']),
        num_hidden_layers=args['depth'],
        num_attention_heads=args['num_heads'],
        hidden_act='gelu',
        layer_norm_eps=_HUB_LAYER_NORMS[args['norm_layer']],
        rope_theta=float(args['pos_embed_rope_base']),
        query_bias=bool(args['qkv_bias']),
        key_bias=False,
        value_bias=bool(args['qkv_bias']),
        proj_bias=bool(args['proj_bias']),
        mlp_bias=bool(args['ffn_bias']),
        layerscale_value=float(args['layerscale_init']),
        use_gated_mlp=False,
        num_register_tokens=args['n_storage_tokens'],
        drop_path_rate=float(args['drop_path_rate']),
        pos_embed_shift=args['pos_embed_rope_shift_coords'],
        pos_embed_jitter=args['pos_embed_rope_jitter_coords'],
        pos_embed_rescale=args['pos_embed_rope_rescale_coords'],
    )

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

"""The facebookresearch/dinov3 hub state-dict layout, mapped onto ``DINOv3ViTModel``'s keys.

Hub layout (``dinov3_vitl16``, and ``model.dino.*`` inside a Spa3R Lightning checkpoint) ->
transformers layout:

================================  ===========================================================
hub key                           ``DINOv3ViTModel`` key
================================  ===========================================================
``cls_token`` [1, 1, D]           ``embeddings.cls_token`` [1, 1, D]
``storage_tokens`` [1, R, D]      ``embeddings.register_tokens`` [1, R, D]
``mask_token`` [1, D]             ``embeddings.mask_token`` [1, 1, D] (reshaped)
``patch_embed.proj.*``            ``embeddings.patch_embeddings.*``
``rope_embed.periods`` [Dh/4]     none: checked against ``rope_theta`` (transformers recomputes
                                  ``inv_freq = 1 / periods`` and does not store it)
``blocks.N.norm1/norm2.*``        ``model.layer.N.norm1/norm2.*``
``blocks.N.attn.qkv.weight``      ``model.layer.N.attention.{q,k,v}_proj.weight`` (split in 3)
``blocks.N.attn.qkv.bias``        ``...{q,v}_proj.bias``; the key third is dropped when masked
``blocks.N.attn.qkv.bias_mask``   none: must be 1 on q and v, 0 on k (``mask_k_bias``); the
                                  reference multiplies the bias by it, so a masked key bias is
                                  no bias and the model is built with ``key_bias=False``
``blocks.N.attn.proj.*``          ``model.layer.N.attention.o_proj.*``
``blocks.N.ls1.gamma`` / ``ls2``  ``model.layer.N.layer_scale1.lambda1`` / ``layer_scale2``
``blocks.N.mlp.fc1.*`` / ``fc2``  ``model.layer.N.mlp.up_proj.*`` / ``down_proj.*``
``norm.*``                        ``norm.*``
================================  ===========================================================

Without a ``bias_mask`` (a model built without ``mask_k_bias``) the key bias is real and maps to
``k_proj.bias``. Every hub key must be one of these: anything else, a block missing one of its
keys, a malformed tensor, a mask of another pattern or periods of another base raises
:class:`CheckpointError` listing every problem. The loaders then compare the mapped dict with the
model's own keys and shapes both ways (:func:`spa3r_ros.models.checkpoint.check_state_dict`).

The inverse, :func:`dinov3_keys_to_hub`, writes the hub layout back (key bias zero, mask and
periods rebuilt), so hub -> HF -> hub returns every tensor except the masked key bias (which the
reference never reads).
"""

from collections.abc import Mapping
import re

import torch
from torch import Tensor

from spa3r_ros.core.errors import CheckpointError, raise_on_mismatch

#: Prefix of the teacher's keys inside a Spa3R Lightning ``state_dict``.
LIGHTNING_DINO_PREFIX = 'model.dino.'

# Whole-tensor renames: hub suffix -> HF suffix, inside a block and at the top level.
_BLOCK_RENAMES = {
    'norm1.weight': 'norm1.weight',
    'norm1.bias': 'norm1.bias',
    'attn.proj.weight': 'attention.o_proj.weight',
    'attn.proj.bias': 'attention.o_proj.bias',
    'ls1.gamma': 'layer_scale1.lambda1',
    'norm2.weight': 'norm2.weight',
    'norm2.bias': 'norm2.bias',
    'mlp.fc1.weight': 'mlp.up_proj.weight',
    'mlp.fc1.bias': 'mlp.up_proj.bias',
    'mlp.fc2.weight': 'mlp.down_proj.weight',
    'mlp.fc2.bias': 'mlp.down_proj.bias',
    'ls2.gamma': 'layer_scale2.lambda1',
}
_BLOCK_QKV = ('attn.qkv.weight', 'attn.qkv.bias', 'attn.qkv.bias_mask')
# Keys every block must have (the bias and its mask are optional: qkv_bias / mask_k_bias).
_BLOCK_REQUIRED = (*_BLOCK_RENAMES, 'attn.qkv.weight')
_TOP_RENAMES = {
    'cls_token': 'embeddings.cls_token',
    'storage_tokens': 'embeddings.register_tokens',
    'patch_embed.proj.weight': 'embeddings.patch_embeddings.weight',
    'patch_embed.proj.bias': 'embeddings.patch_embeddings.bias',
    'norm.weight': 'norm.weight',
    'norm.bias': 'norm.bias',
}
_TOP_REQUIRED = (
    'cls_token',
    'mask_token',
    'patch_embed.proj.weight',
    'norm.weight',
    'rope_embed.periods',
)
_MASK_TOKEN = 'mask_token'
_PERIODS = 'rope_embed.periods'
_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(.+)$')
_HF_BLOCK_KEY = re.compile(r'^model\.layer\.(\d+)\.(.+)$')
_PERIODS_RTOL = 1e-5


def rope_periods(rope_theta: float, head_dim: int) -> Tensor:
    """The hub's ``rope_embed.periods`` for a RoPE base: ``base ** (i / (head_dim / 4))``.

    Returns:
        float32 ``[head_dim // 4]``.
    """
    quarter = head_dim // 4
    return rope_theta ** (torch.arange(quarter, dtype=torch.float64) / quarter).to(torch.float32)


def _key_bias_mask(width: int) -> Tensor:
    mask = torch.ones(3 * width)
    mask[width : 2 * width] = 0
    return mask


def dinov3_keys_from_hub(
    state: Mapping[str, Tensor],
    *,
    rope_theta: float | None = None,
    head_dim: int | None = None,
) -> dict[str, Tensor]:
    """Map a facebookresearch/dinov3 ``DinoVisionTransformer`` state dict onto ``DINOv3ViTModel``.

    Args:
        state: the hub-layout tensors (``cls_token``, ``blocks.N.attn.qkv.weight``, ...).
        rope_theta: when given with ``head_dim``, ``rope_embed.periods`` must equal the periods
            of this base (the transformers model recomputes them from its config).
        head_dim: the attention head width of the target model.

    Returns:
        Tensors keyed by ``DINOv3ViTModel`` state-dict keys (the input tensors, split or
        reshaped where the layouts differ; no copy otherwise).

    Raises:
        CheckpointError: listing every unknown key, every key a block or the model lacks, every
            malformed tensor, a key-bias mask of another pattern and periods of another base.
    """
    out: dict[str, Tensor] = {}
    unexpected: list[str] = []
    problems: list[str] = []
    blocks: dict[int, set[str]] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            index, suffix = int(match.group(1)), match.group(2)
            if suffix in _BLOCK_RENAMES:
                out[f'model.layer.{index}.{_BLOCK_RENAMES[suffix]}'] = value
            elif suffix not in _BLOCK_QKV:
                unexpected.append(key)
                continue
            blocks.setdefault(index, set()).add(suffix)
        elif key in _TOP_RENAMES:
            out[_TOP_RENAMES[key]] = value
        elif key == _MASK_TOKEN:
            if value.ndim != 2:
                problems.append(f'{key}: expected [1, D], got {list(value.shape)}')
            out['embeddings.mask_token'] = value.reshape(1, 1, -1)
        elif key == _PERIODS:
            if rope_theta is not None and head_dim is not None:
                problems.extend(_check_periods(value, rope_theta, head_dim))
        else:
            unexpected.append(key)
    missing = [k for k in _TOP_REQUIRED if k not in state]
    if blocks and sorted(blocks) != list(range(len(blocks))):
        problems.append(f'block indices are not 0..{len(blocks) - 1}: {sorted(blocks)}')
    for index in sorted(blocks):
        missing.extend(f'blocks.{index}.{s}' for s in _BLOCK_REQUIRED if s not in blocks[index])
        problems.extend(_split_qkv(state, index, out))
    raise_on_mismatch(
        'DINOv3 hub state dict does not map onto DINOv3ViTModel',
        [
            ('missing keys', sorted(missing)),
            ('unexpected keys', sorted(unexpected)),
            ('bad tensors', problems),
        ],
    )
    return out


def _check_periods(periods: Tensor, rope_theta: float, head_dim: int) -> list[str]:
    expected = rope_periods(rope_theta, head_dim)
    if tuple(periods.shape) != tuple(expected.shape):
        return [f'{_PERIODS}: shape {list(periods.shape)}, model needs {list(expected.shape)}']
    if not torch.allclose(periods.float(), expected, rtol=_PERIODS_RTOL, atol=0):
        return [f'{_PERIODS}: {periods.tolist()} are not the periods of RoPE base {rope_theta}']
    return []


def _split_qkv(state: Mapping[str, Tensor], index: int, out: dict[str, Tensor]) -> list[str]:
    """Split block ``index``'s fused qkv into q/k/v (in place into ``out``); returns problems."""
    prefix = f'blocks.{index}.attn.qkv.'
    hf = f'model.layer.{index}.attention.'
    weight = state.get(prefix + 'weight')
    if weight is None:
        return []  # reported as missing
    if weight.ndim != 2 or weight.shape[0] != 3 * weight.shape[1]:
        return [f'{prefix}weight: expected [3D, D], got {list(weight.shape)}']
    width = weight.shape[1]
    for name, part in zip('qkv', weight.split(width)):
        out[f'{hf}{name}_proj.weight'] = part
    bias = state.get(prefix + 'bias')
    mask = state.get(prefix + 'bias_mask')
    if bias is None:
        return [f'{prefix}bias_mask without a bias'] if mask is not None else []
    if tuple(bias.shape) != (3 * width,):
        return [f'{prefix}bias: expected [{3 * width}], got {list(bias.shape)}']
    q_bias, k_bias, v_bias = bias.split(width)
    out[f'{hf}q_proj.bias'] = q_bias
    out[f'{hf}v_proj.bias'] = v_bias
    if mask is None:
        # No mask_k_bias: the key bias is used as it is.
        out[f'{hf}k_proj.bias'] = k_bias
        return []
    # The reference multiplies the bias by this mask; only the mask_k_bias pattern (keep q and
    # v, zero k) makes the masked key bias equal to no key bias.
    if tuple(mask.shape) != (3 * width,) or not torch.equal(mask.float(), _key_bias_mask(width)):
        return [f'{prefix}bias_mask is not 1 on q and v and 0 on k: {mask.tolist()}']
    return []


def dinov3_keys_to_hub(
    state: Mapping[str, Tensor], *, rope_theta: float, head_dim: int
) -> dict[str, Tensor]:
    """The inverse of :func:`dinov3_keys_from_hub`, for a ``key_bias=False`` model.

    The key third of ``qkv.bias`` is written as zeros with a ``bias_mask`` that masks it, and
    ``rope_embed.periods`` is rebuilt from ``rope_theta`` and ``head_dim``.

    Args:
        state: ``DINOv3ViTModel`` tensors.
        rope_theta: the model's RoPE base.
        head_dim: the model's attention head width.

    Returns:
        Tensors in the facebookresearch/dinov3 layout.

    Raises:
        CheckpointError: an unknown key, or a block lacking one of its tensors.
    """
    top = {hf: hub for hub, hf in _TOP_RENAMES.items()}
    block_renames = {hf: hub for hub, hf in _BLOCK_RENAMES.items()}
    out: dict[str, Tensor] = {}
    unexpected: list[str] = []
    qkv: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        match = _HF_BLOCK_KEY.match(key)
        if key in top:
            out[top[key]] = value
        elif key == 'embeddings.mask_token':
            out[_MASK_TOKEN] = value.reshape(1, -1)
        elif match and match.group(2) in block_renames:
            out[f'blocks.{match.group(1)}.{block_renames[match.group(2)]}'] = value
        elif (
            match
            and match.group(2).startswith('attention.')
            and match.group(2).endswith(('_proj.weight', '_proj.bias'))
        ):
            qkv.setdefault(int(match.group(1)), {})[match.group(2)[len('attention.') :]] = value
        else:
            unexpected.append(key)
    missing: list[str] = []
    for index, parts in sorted(qkv.items()):
        names = [f'{n}_proj.weight' for n in 'qkv']
        absent = [n for n in names if n not in parts]
        if absent:
            missing.extend(f'model.layer.{index}.attention.{n}' for n in absent)
            continue
        out[f'blocks.{index}.attn.qkv.weight'] = torch.cat([parts[n] for n in names])
        if 'q_proj.bias' in parts and 'v_proj.bias' in parts:
            q_bias, v_bias = parts['q_proj.bias'], parts['v_proj.bias']
            out[f'blocks.{index}.attn.qkv.bias'] = torch.cat(
                [q_bias, torch.zeros_like(q_bias), v_bias]
            )
            out[f'blocks.{index}.attn.qkv.bias_mask'] = _key_bias_mask(q_bias.shape[0]).to(
                q_bias.dtype
            )
    if unexpected or missing:
        raise CheckpointError(
            f'DINOv3ViTModel state dict does not map onto the hub layout: missing {missing}, '
            f'unexpected {sorted(unexpected)}'
        )
    out[_PERIODS] = rope_periods(rope_theta, head_dim)
    return out


def dino_state_from_lightning(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The teacher's hub-layout tensors inside a Spa3R Lightning ``state_dict`` (``model.dino.*``).

    Raises:
        CheckpointError: if no key starts with ``model.dino.``.
    """
    out = {
        k[len(LIGHTNING_DINO_PREFIX) :]: v
        for k, v in state.items()
        if k.startswith(LIGHTNING_DINO_PREFIX)
    }
    if not out:
        raise CheckpointError(f'checkpoint has no keys starting with {LIGHTNING_DINO_PREFIX!r}')
    return out

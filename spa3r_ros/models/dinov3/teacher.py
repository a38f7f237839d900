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

"""The DINOv3 teacher: transformers' ``DINOv3ViTModel`` run the way the reference runs its ViT.

:class:`DINOv3Teacher` owns a ``DINOv3ViTModel`` (attribute ``vit``) and returns the normalised
patch tokens (the reference's ``x_norm_patchtokens``), the class token and the storage tokens.
One detail differs from ``DINOv3ViTModel.forward`` on purpose: the reference
(``DinoVisionTransformer.forward_features_list``) recomputes the RoPE sin/cos inside its block
loop, so in training mode every block draws its own random coordinate rescaling
(``rescale_coords``), while ``DINOv3ViTModel`` draws once per forward. The teacher calls the
model's own ``rope_embeddings`` before every layer, which makes the draws, their order and their
count (one float32 scalar per block from torch's RNG) those of the reference. In eval mode the
two are the same computation.

Loaders: :func:`load_dinov3_hub_state` (a hub-layout dict, e.g. the ``dinov3_vitl16`` ``.pth``),
:func:`load_dinov3_weights` (a file: a hub ``.pth`` / ``.safetensors`` or a Spa3R Lightning
``.ckpt`` holding ``model.dino.*``). Both check every key and shape both ways before copying.
"""

from collections.abc import Mapping
from dataclasses import dataclass
import logging
import os
from pathlib import Path

import torch
from torch import nn, Tensor
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models.checkpoint import load_checked, read_state_dict
from spa3r_ros.models.dinov3.keys import (
    dino_state_from_lightning,
    dinov3_keys_from_hub,
    LIGHTNING_DINO_PREFIX,
)

logger = logging.getLogger(__name__)


@dataclass
class DINOv3Features:
    """The teacher's normalised output tokens.

    Attributes:
        patch_tokens: ``[N, hp * wp, C]`` (row-major patch order), the reference's
            ``x_norm_patchtokens``.
        cls_token: ``[N, C]`` (``x_norm_clstoken``).
        storage_tokens: ``[N, R, C]`` (``x_storage_tokens``).
    """

    patch_tokens: Tensor
    cls_token: Tensor
    storage_tokens: Tensor


class DINOv3Teacher(nn.Module):
    """A DINOv3 ViT on transformers' ``DINOv3ViTModel``, with the reference's per-block RoPE.

    The constructor builds random weights (transformers' init) and touches neither disk nor
    network; load weights with :func:`load_dinov3_weights`.

    Args:
        config: the architecture (:func:`~spa3r_ros.models.dinov3.config.dinov3_vitl16_config`
            or :func:`~spa3r_ros.models.dinov3.config.tiny_dinov3_config`).
    """

    def __init__(self, config: DINOv3ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.vit = DINOv3ViTModel(config)

    @property
    def hidden_size(self) -> int:
        """Feature width C."""
        return int(self.config.hidden_size)

    @property
    def patch_size(self) -> int:
        """Pixel side of one patch."""
        return int(self.config.patch_size)

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // int(self.config.num_attention_heads)

    def forward(self, pixel_values: Tensor) -> DINOv3Features:
        """Run the ViT.

        Args:
            pixel_values: ``[N, 3, h, w]``, already normalised (ImageNet mean/std); ``h`` and
                ``w`` multiples of the patch size.

        Returns:
            :class:`DINOv3Features` with ``hp = h / patch``, ``wp = w / patch``.

        Raises:
            ValueError: a bad shape.
        """
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f'pixel_values must be [N, 3, h, w], got {list(pixel_values.shape)}')
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'image size {height}x{width} is not a multiple of the patch size '
                f'{self.patch_size}'
            )
        vit = self.vit
        pixel_values = pixel_values.to(vit.embeddings.patch_embeddings.weight.dtype)
        hidden = vit.embeddings(pixel_values)
        for layer in vit.model.layer:
            # Per block, as the reference does: a fresh RoPE draw for each block in training.
            position = vit.rope_embeddings(pixel_values)
            hidden = layer(hidden, position_embeddings=position)
        hidden = vit.norm(hidden)
        prefix = 1 + int(self.config.num_register_tokens)
        return DINOv3Features(
            patch_tokens=hidden[:, prefix:],
            cls_token=hidden[:, 0],
            storage_tokens=hidden[:, 1:prefix],
        )


def _vit_of(model: DINOv3Teacher | DINOv3ViTModel) -> DINOv3ViTModel:
    return model.vit if isinstance(model, DINOv3Teacher) else model


def load_dinov3_hub_state(
    model: DINOv3Teacher | DINOv3ViTModel, state: Mapping[str, Tensor]
) -> None:
    """Load facebookresearch/dinov3 hub-layout tensors into the model, every key checked.

    Args:
        model: the teacher (or its ``DINOv3ViTModel``) of the checkpoint's architecture.
        state: hub-layout tensors (see :mod:`spa3r_ros.models.dinov3.keys`).

    Raises:
        CheckpointError: a key the mapping does not know, a key missing on either side, a shape
            mismatch, a key-bias mask or RoPE periods the config does not produce (nothing is
            loaded then).
    """
    vit = _vit_of(model)
    config = vit.config
    mapped = dinov3_keys_from_hub(
        state,
        rope_theta=float(config.rope_theta),
        head_dim=int(config.hidden_size) // int(config.num_attention_heads),
    )
    load_checked(vit, mapped)


def load_dinov3_weights(model: DINOv3Teacher | DINOv3ViTModel, path: str | os.PathLike) -> None:
    """Load the teacher's weights from a file.

    Accepted: a hub checkpoint (``dinov3_vitl16_pretrain_*.pth`` or a ``.safetensors`` in the
    hub layout) or a Spa3R Lightning checkpoint (``.ckpt``; its ``state_dict`` holds the teacher
    under ``model.dino.``). Files are read with ``weights_only=True``.

    Raises:
        CheckpointError: unreadable file or any key/shape mismatch.
    """
    state = read_state_dict(path)
    if any(k.startswith(LIGHTNING_DINO_PREFIX) for k in state):
        state = dino_state_from_lightning(state)
        origin = 'Spa3R Lightning checkpoint'
    elif any(k.startswith('model.') for k in state):
        raise CheckpointError(
            f'{path} looks like a Lightning checkpoint but has no {LIGHTNING_DINO_PREFIX}* keys'
        )
    else:
        origin = 'DINOv3 hub checkpoint'
    load_dinov3_hub_state(model, state)
    logger.info('loaded DINOv3 teacher weights from %s %s', origin, Path(path))


@torch.no_grad()
def randomize_dinov3_(model: DINOv3Teacher | DINOv3ViTModel, generator: torch.Generator) -> None:
    """Draw weights that make every part of a random DINOv3 matter (for tiny test models).

    transformers' init draws weights with std 0.02, sets LayerScale to ``layerscale_value`` (1e-5
    for ViT-L/16) and zeroes the biases, which would leave a random model almost blind to its
    blocks, to its attention pattern and so to RoPE. This draws weights with std
    ``1 / sqrt(fan_in)`` (activations near 1), LayerScale in [0.05, 0.5], norm weights near 1,
    and small non-zero biases and tokens.
    """
    vit = _vit_of(model)
    for name, param in vit.named_parameters():
        if name.endswith('lambda1'):
            value = torch.rand(param.shape, generator=generator) * 0.45 + 0.05
        elif 'norm' in name and name.endswith('weight'):
            value = 1 + 0.1 * torch.randn(param.shape, generator=generator)
        elif name.endswith('bias'):
            value = 0.1 * torch.randn(param.shape, generator=generator)
        elif name.startswith('embeddings.') and not name.endswith('patch_embeddings.weight'):
            value = 0.5 * torch.randn(param.shape, generator=generator)
        else:
            fan_in = param[0].numel()
            value = torch.randn(param.shape, generator=generator) / fan_in**0.5
        param.copy_(value)

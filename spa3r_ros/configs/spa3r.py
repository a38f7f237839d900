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

"""Architecture configuration of Spa3R: the scene-latent encoder, its PRoPE decoder and heads.

Spa3R (hustvl/Spa3R, ``spa3r/models/spa3r.py``) compresses the patch features of a frozen,
slightly modified VGGT into ``num_queries`` latent tokens, and is trained by a decoder that
re-synthesises per-view VGGT and DINOv3 features from those latents and a camera. This module
holds only the numbers that fix the architecture; it imports no torch.

References:
    hustvl/Spa3R @ 07e0b60: ``spa3r/models/spa3r.py`` (constructor), ``spa3r/configs/spa3r.yaml``
    (the released training config), and the project's ``docs/reference/spa3r_spec.md`` section 2.
"""

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.vggt import vggt_1b_config, vggt_config_from_golden, VGGTConfig
from spa3r_ros.core.errors import ConfigError

#: Width of DINOv3 ViT-L/16 features, the semantic target of the released model.
DINOV3_VITL16_DIM = 1024


def _spa3r_vggt() -> VGGTConfig:
    # Spa3R's MaskedAggregator rebuilds the global blocks with RMSNorm q/k norms (spec 2.2).
    return vggt_1b_config(global_qk_norm='rms')


@dataclass(frozen=True)
class Spa3RConfig:
    """Spa3R encoder/decoder sizes and training-time masking.

    Attributes:
        embed_dim: width D of the Spa3R tokens (latents, encoder and decoder).
        num_queries: number Q of learned latent queries, i.e. latent tokens per scene.
        num_encoder_layers: blocks in the encoder transformer.
        num_decoder_layers: blocks in the PRoPE decoder transformer.
        num_heads: attention heads in encoder and decoder; ``embed_dim / num_heads`` must be a
            multiple of 8 because PRoPE splits each head into 4-vectors and two 1-D RoPE halves.
        num_register_tokens: register tokens prepended (and removed again) by both transformers.
        qk_norm: RMS-normalise queries and keys per head (weight only, eps = machine epsilon).
        mlp_ratio: hidden width of every MLP (blocks and heads) as a multiple of ``embed_dim``.
        rope_freq: base frequency of the encoder's 2-D RoPE (the decoder uses none).
        prope_freq_base: base frequency of the 1-D RoPE inside PRoPE attention.
        aggregator_dim: width of the VGGT aggregator output (2 x the VGGT width: frame and global
            halves). It sizes the input projection and the ``geo`` head.
        sem_dim: width of the semantic target features (DINOv3 ViT-L/16: 1024).
        patch_size: pixel size of one VGGT patch; images must be multiples of it.
        mask_ratio: fraction of views masked (target-only) during training.
        asymmetric_masking: True runs the aggregator once with an attention mask (context views see
            only context views); False runs it twice, on the context views and on all views.
        vggt: the frozen VGGT (aggregator with RMSNorm q/k in its global blocks, camera, depth and
            point heads), or None to build only Spa3R's own modules (decoder-side work, manifests
            of the trainable part). ``aggregator_dim`` must be twice its aggregator width.
    """

    embed_dim: int = param(
        768, description='Width of the Spa3R tokens', bounds=(8, 8192), read_only=True
    )
    num_queries: int = param(
        256, description='Latent tokens per scene', bounds=(1, 4096), read_only=True
    )
    num_encoder_layers: int = param(
        6, description='Blocks in the encoder transformer', bounds=(1, 64), read_only=True
    )
    num_decoder_layers: int = param(
        6, description='Blocks in the PRoPE decoder transformer', bounds=(1, 64), read_only=True
    )
    num_heads: int = param(
        12, description='Attention heads in encoder and decoder', bounds=(1, 128), read_only=True
    )
    num_register_tokens: int = param(
        4,
        description='Register tokens prepended by each transformer',
        bounds=(0, 64),
        read_only=True,
    )
    qk_norm: bool = param(True, description='RMS-normalise q and k per head', read_only=True)
    mlp_ratio: float = param(
        4.0,
        description='MLP hidden width as a multiple of embed_dim',
        bounds=(0.25, 16.0),
        read_only=True,
    )
    rope_freq: float = param(
        100.0,
        description='Base frequency of the encoder 2-D RoPE',
        bounds=(1.0, None),
        read_only=True,
    )
    prope_freq_base: float = param(
        100.0,
        description='Base frequency of the RoPE part of PRoPE',
        bounds=(1.0, None),
        read_only=True,
    )
    aggregator_dim: int = param(
        2048,
        description='Width of the VGGT aggregator output (2 x VGGT width)',
        bounds=(2, 16384),
        read_only=True,
    )
    sem_dim: int = param(
        DINOV3_VITL16_DIM,
        description='Width of the semantic (DINOv3) target features',
        bounds=(1, 16384),
        read_only=True,
    )
    patch_size: int = param(
        14, description='Pixel size of one VGGT patch', bounds=(1, 64), read_only=True, unit='px'
    )
    mask_ratio: float = param(
        0.5, description='Fraction of views masked during training', bounds=(0.0, 1.0)
    )
    asymmetric_masking: bool = param(
        False, description='One masked aggregator run (True) or two runs (False)'
    )

    vggt: VGGTConfig | None = param(
        default_factory=_spa3r_vggt,
        description='Frozen VGGT giving features and pseudo-labels (None: own modules only)',
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.vggt is not None:
            width = 2 * self.vggt.aggregator.embed_dim
            if self.aggregator_dim != width:
                raise ConfigError(
                    f'Spa3RConfig.aggregator_dim = {self.aggregator_dim} must be 2 x '
                    f'vggt.aggregator.embed_dim = {width}'
                )
            if self.vggt.aggregator.global_qk_norm != 'rms':
                raise ConfigError(
                    'Spa3RConfig.vggt.aggregator.global_qk_norm = '
                    f"{self.vggt.aggregator.global_qk_norm!r}: Spa3R's aggregator uses 'rms'"
                )
            patch = self.vggt.aggregator.patch_embed.patch_size
            if self.patch_size != patch:
                raise ConfigError(
                    f'Spa3RConfig.patch_size = {self.patch_size} must equal the VGGT patch '
                    f'size {patch}'
                )
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f'Spa3RConfig.embed_dim = {self.embed_dim} is not divisible by '
                f'num_heads = {self.num_heads}'
            )
        head_dim = self.embed_dim // self.num_heads
        if head_dim % 8:
            raise ConfigError(
                f'Spa3RConfig head width embed_dim / num_heads = {head_dim} must be a multiple '
                'of 8 (PRoPE splits each head into 4-vectors and two RoPE halves)'
            )
        if self.aggregator_dim % 2:
            raise ConfigError(
                f'Spa3RConfig.aggregator_dim = {self.aggregator_dim} must be even '
                '(frame and global halves)'
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.embed_dim // self.num_heads


def spa3r_official_config() -> Spa3RConfig:
    """The released Spa3R: 768 wide, 256 queries, 6 + 6 layers, 12 heads, on VGGT-1B (RMS q/k).

    Values come from ``spa3r/configs/spa3r.yaml`` (embed_dim, mask_ratio, num_queries, layers and
    ``asymmetric_masking: False``) and the class defaults (heads, registers, qk_norm).
    """
    return Spa3RConfig()


def spa3r_config_from_golden(config: Path | str | dict[str, Any]) -> Spa3RConfig:
    """Build a :class:`Spa3RConfig` from a golden ``spa3r_tiny/config.json``.

    Args:
        config: path to the file, or its parsed content.

    Returns:
        The config with the file's sizes; ``asymmetric_masking`` keeps the class default
        because the golden data covers both modes.

    Raises:
        ConfigError: if a required entry is missing or a value is invalid.
    """
    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    try:
        kwargs = config['Spa3R_init_kwargs']
        return Spa3RConfig(
            embed_dim=int(kwargs['embed_dim']),
            num_queries=int(kwargs['num_queries']),
            num_encoder_layers=int(kwargs['num_encoder_layers']),
            num_decoder_layers=int(kwargs['num_decoder_layers']),
            num_heads=int(kwargs['num_heads']),
            num_register_tokens=int(kwargs['num_register_tokens']),
            qk_norm=bool(kwargs['qk_norm']),
            mask_ratio=float(kwargs['mask_ratio']),
            rope_freq=float(config['encoder']['rope_freq']),
            aggregator_dim=int(config['aggr_dim']),
            sem_dim=int(config['sem_head_out_dim']),
            patch_size=int(config['patch_size']),
            vggt=vggt_config_from_golden(config['vggt'], global_qk_norm='rms'),
        )
    except KeyError as err:
        raise ConfigError(f'golden Spa3R config has no entry {err}') from err

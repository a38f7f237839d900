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

"""Architecture configs of the VGGT-style backbone: DINOv2 patch embed, aggregator and heads.

The defaults are the sizes of the released facebook/VGGT-1B (see :func:`vggt_1b_config`); the
golden tiny model is built by :func:`vggt_config_from_golden`. Every field is architecture, so
every field is ``read_only``. Field names follow the reference constructor arguments
(facebookresearch/vggt @ 44b3afb) so the mapping stays obvious.
"""

from dataclasses import dataclass, replace
from typing import Any

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.core.errors import ConfigError

QK_NORM_CHOICES = ('layernorm', 'rms')
POSE_ACTIVATIONS = ('linear', 'inv_log', 'exp', 'relu')
DENSE_ACTIVATIONS = ('inv_log', 'exp', 'linear', 'relu', 'sigmoid', 'norm_exp')
CONF_ACTIVATIONS = ('expp1', 'expp0', 'sigmoid')


@dataclass(frozen=True)
class DinoV2Config:
    """The DINOv2 ViT (with registers) used as the aggregator's patch embedding.

    Args:
        img_size: training image side in pixels; the positional embedding covers a square grid of
            ``img_size // patch_size`` patches and is interpolated for other sizes.
        patch_size: side of a square patch in pixels.
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of D.
        num_register_tokens: DINOv2 register tokens (discarded from the output).
        init_values: LayerScale initial value (1.0 in VGGT's DINOv2).
        norm_eps: epsilon of every LayerNorm.
        interpolate_antialias: use antialiasing in the bicubic pos-embed interpolation.
    """

    img_size: int = param(
        518, description='Training image side (px)', bounds=(1, None), read_only=True, unit='px'
    )
    patch_size: int = param(
        14, description='Patch side (px)', bounds=(1, None), read_only=True, unit='px'
    )
    embed_dim: int = param(1024, description='Token width', bounds=(1, None), read_only=True)
    depth: int = param(24, description='Number of ViT blocks', bounds=(0, None), read_only=True)
    num_heads: int = param(16, description='Attention heads', bounds=(1, None), read_only=True)
    mlp_ratio: float = param(
        4.0, description='MLP width / token width', bounds=(0.0, None), read_only=True
    )
    num_register_tokens: int = param(
        4, description='DINOv2 register tokens', bounds=(0, None), read_only=True
    )
    init_values: float = param(1.0, description='LayerScale initial value', read_only=True)
    norm_eps: float = param(
        1e-6, description='LayerNorm epsilon', bounds=(0.0, None), read_only=True
    )
    interpolate_antialias: bool = param(
        True, description='Antialias the pos-embed resize', read_only=True
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f'DinoV2Config.embed_dim = {self.embed_dim} is not divisible by '
                f'num_heads = {self.num_heads}'
            )
        if self.img_size % self.patch_size:
            raise ConfigError(
                f'DinoV2Config.img_size = {self.img_size} is not a multiple of '
                f'patch_size = {self.patch_size}'
            )


@dataclass(frozen=True)
class AggregatorConfig:
    """The alternating-attention aggregator (frame blocks and global blocks).

    Args:
        embed_dim: token width D (equal to the patch embed's width).
        depth: number of (frame, global) block pairs; the output list has this many entries.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of D.
        num_register_tokens: aggregator register tokens per frame (after the camera token).
        qkv_bias: bias in the qkv projection.
        proj_bias: bias in the attention output projection.
        ffn_bias: bias in the MLP layers.
        qk_norm: per-head normalisation of q and k.
        global_qk_norm: kind of q/k norm in the global blocks: ``'layernorm'`` (VGGT, weight and
            bias) or ``'rms'`` (Spa3R's MaskedAggregator: RMSNorm, weight only, float32 machine
            epsilon; the state dict has no q/k norm biases in the global blocks).
        rope_freq: base frequency of the 2D RoPE; 0 disables RoPE.
        init_values: LayerScale initial value of the frame/global blocks.
        norm_eps: epsilon of the block LayerNorms and the LayerNorm q/k norms.
        patch_embed: the DINOv2 patch embedding.
    """

    embed_dim: int = param(1024, description='Token width', bounds=(1, None), read_only=True)
    depth: int = param(
        24, description='Frame/global block pairs', bounds=(1, None), read_only=True
    )
    num_heads: int = param(16, description='Attention heads', bounds=(1, None), read_only=True)
    mlp_ratio: float = param(
        4.0, description='MLP width / token width', bounds=(0.0, None), read_only=True
    )
    num_register_tokens: int = param(
        4, description='Register tokens per frame', bounds=(0, None), read_only=True
    )
    qkv_bias: bool = param(True, description='Bias in the qkv projection', read_only=True)
    proj_bias: bool = param(True, description='Bias in the attention projection', read_only=True)
    ffn_bias: bool = param(True, description='Bias in the MLP', read_only=True)
    qk_norm: bool = param(True, description='Normalise q and k per head', read_only=True)
    global_qk_norm: str = param(
        'layernorm',
        description='q/k norm kind of the global blocks',
        choices=QK_NORM_CHOICES,
        read_only=True,
    )
    rope_freq: float = param(
        100.0,
        description='2D RoPE base frequency (0 disables)',
        bounds=(0.0, None),
        read_only=True,
    )
    init_values: float = param(0.01, description='LayerScale initial value', read_only=True)
    norm_eps: float = param(
        1e-5, description='LayerNorm epsilon', bounds=(0.0, None), read_only=True
    )
    patch_embed: DinoV2Config = param(
        default_factory=DinoV2Config, description='DINOv2 patch embedding', read_only=True
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f'AggregatorConfig.embed_dim = {self.embed_dim} is not divisible '
                f'by num_heads = {self.num_heads}'
            )
        if self.rope_freq > 0 and (self.embed_dim // self.num_heads) % 4:
            raise ConfigError(
                f'AggregatorConfig: head width {self.embed_dim // self.num_heads} '
                'must be a multiple of 4 for 2D RoPE'
            )
        if self.patch_embed.embed_dim != self.embed_dim:
            raise ConfigError(
                f'AggregatorConfig.patch_embed.embed_dim = '
                f'{self.patch_embed.embed_dim} must equal embed_dim = '
                f'{self.embed_dim}'
            )

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token in a frame: 1 camera token + the register tokens."""
        return 1 + self.num_register_tokens


@dataclass(frozen=True)
class CameraHeadConfig:
    """The iterative camera head (absT_quaR_FoV pose encoding).

    Args:
        dim_in: input width (2 x the aggregator width: frame and global halves).
        trunk_depth: transformer blocks in the trunk.
        num_heads: attention heads in the trunk.
        mlp_ratio: trunk MLP width / dim_in.
        init_values: LayerScale initial value in the trunk.
        num_iterations: refinement iterations (the output list has this many entries).
        trans_act: activation of the translation.
        quat_act: activation of the quaternion.
        fl_act: activation of the two fields of view.
    """

    dim_in: int = param(2048, description='Input width', bounds=(1, None), read_only=True)
    trunk_depth: int = param(4, description='Trunk blocks', bounds=(0, None), read_only=True)
    num_heads: int = param(
        16, description='Trunk attention heads', bounds=(1, None), read_only=True
    )
    mlp_ratio: float = param(
        4.0, description='Trunk MLP width / dim_in', bounds=(0.0, None), read_only=True
    )
    init_values: float = param(0.01, description='LayerScale initial value', read_only=True)
    num_iterations: int = param(
        4, description='Refinement iterations', bounds=(1, None), read_only=True
    )
    trans_act: str = param(
        'linear', description='Translation activation', choices=POSE_ACTIVATIONS, read_only=True
    )
    quat_act: str = param(
        'linear', description='Quaternion activation', choices=POSE_ACTIVATIONS, read_only=True
    )
    fl_act: str = param(
        'relu', description='Field-of-view activation', choices=POSE_ACTIVATIONS, read_only=True
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.dim_in % self.num_heads:
            raise ConfigError(
                f'CameraHeadConfig.dim_in = {self.dim_in} is not divisible by '
                f'num_heads = {self.num_heads}'
            )


@dataclass(frozen=True)
class DPTHeadConfig:
    """A DPT dense-prediction head (depth or world points).

    Args:
        dim_in: input width (2 x the aggregator width).
        patch_size: patch side in pixels.
        output_dim: output channels including the confidence channel (depth 2, points 4).
        activation: activation of the prediction channels.
        conf_activation: activation of the confidence channel.
        features: width of the fusion ("scratch") layers.
        out_channels: widths of the four projected feature maps.
        intermediate_layer_idx: the four aggregator depth steps the head reads.
        pos_embed: add the sinusoidal UV embedding (x 0.1) to projected and fused maps.
        head_features_2: hidden width of the last conv stack.
        frames_chunk_size: frames processed at once (memory only, no numeric effect); 0 = all.
    """

    dim_in: int = param(2048, description='Input width', bounds=(1, None), read_only=True)
    patch_size: int = param(
        14, description='Patch side (px)', bounds=(1, None), read_only=True, unit='px'
    )
    output_dim: int = param(
        4, description='Output channels incl. confidence', bounds=(2, None), read_only=True
    )
    activation: str = param(
        'inv_log', description='Prediction activation', choices=DENSE_ACTIVATIONS, read_only=True
    )
    conf_activation: str = param(
        'expp1', description='Confidence activation', choices=CONF_ACTIVATIONS, read_only=True
    )
    features: int = param(256, description='Fusion width', bounds=(2, None), read_only=True)
    out_channels: tuple[int, int, int, int] = param(
        (256, 512, 1024, 1024), description='Projected feature widths', read_only=True
    )
    intermediate_layer_idx: tuple[int, int, int, int] = param(
        (4, 11, 17, 23), description='Aggregator depth steps read by the head', read_only=True
    )
    pos_embed: bool = param(True, description='Add the UV sinusoidal embedding', read_only=True)
    head_features_2: int = param(
        32, description='Hidden width of the output convs', bounds=(1, None), read_only=True
    )
    frames_chunk_size: int = param(
        8, description='Frames per chunk (0 = all at once)', bounds=(0, None)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ('out_channels', 'intermediate_layer_idx'):
            value = getattr(self, name)
            if len(value) != 4:
                raise ConfigError(f'DPTHeadConfig.{name} = {value!r} must have 4 entries')


def _point_head() -> DPTHeadConfig:
    return DPTHeadConfig(output_dim=4, activation='inv_log', conf_activation='expp1')


def _depth_head() -> DPTHeadConfig:
    return DPTHeadConfig(output_dim=2, activation='exp', conf_activation='expp1')


@dataclass(frozen=True)
class VGGTConfig:
    """The whole VGGT model: aggregator plus the optional camera, depth and point heads.

    Args:
        aggregator: the backbone.
        camera_head: the camera head (built if ``enable_camera``).
        point_head: the world-point DPT head (built if ``enable_point``).
        depth_head: the depth DPT head (built if ``enable_depth``).
        enable_camera: build the camera head.
        enable_point: build the point head.
        enable_depth: build the depth head.
        enable_track: build the track head. Not implemented: must stay False; a VGGT-1B
            checkpoint's ``track_head.*`` keys are dropped on load.
    """

    aggregator: AggregatorConfig = param(
        default_factory=AggregatorConfig, description='Backbone', read_only=True
    )
    camera_head: CameraHeadConfig = param(
        default_factory=CameraHeadConfig, description='Camera head', read_only=True
    )
    point_head: DPTHeadConfig = param(
        default_factory=_point_head, description='Point head', read_only=True
    )
    depth_head: DPTHeadConfig = param(
        default_factory=_depth_head, description='Depth head', read_only=True
    )
    enable_camera: bool = param(True, description='Build the camera head', read_only=True)
    enable_point: bool = param(True, description='Build the point head', read_only=True)
    enable_depth: bool = param(True, description='Build the depth head', read_only=True)
    enable_track: bool = param(
        False,
        description='Build the track head (not implemented)',
        choices=(False,),
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        width = 2 * self.aggregator.embed_dim
        depth = self.aggregator.depth
        heads = [
            ('camera_head', self.camera_head, self.enable_camera),
            ('point_head', self.point_head, self.enable_point),
            ('depth_head', self.depth_head, self.enable_depth),
        ]
        for name, head, enabled in heads:
            if enabled and head.dim_in != width:
                raise ConfigError(
                    f'VGGTConfig.{name}.dim_in = {head.dim_in} must be 2 x '
                    f'aggregator.embed_dim = {width}'
                )
            if enabled and isinstance(head, DPTHeadConfig):
                bad = [i for i in head.intermediate_layer_idx if not -depth <= i < depth]
                if bad:
                    raise ConfigError(
                        f'VGGTConfig.{name}.intermediate_layer_idx has {bad}, '
                        f'outside the aggregator depth {depth}'
                    )
                if head.patch_size != self.aggregator.patch_embed.patch_size:
                    raise ConfigError(
                        f'VGGTConfig.{name}.patch_size = {head.patch_size} must '
                        'equal aggregator.patch_embed.patch_size = '
                        f'{self.aggregator.patch_embed.patch_size}'
                    )


def vggt_1b_config(*, global_qk_norm: str = 'layernorm') -> VGGTConfig:
    """The facebook/VGGT-1B architecture (spec 1.1 and 1.6), without the track head.

    Args:
        global_qk_norm: ``'layernorm'`` for stock VGGT-1B, ``'rms'`` for Spa3R's aggregator.

    Returns:
        The config; its defaults are already the 1B sizes.
    """
    cfg = VGGTConfig()
    return replace(cfg, aggregator=replace(cfg.aggregator, global_qk_norm=global_qk_norm))


def _expect(section: dict[str, Any], key: str, expected: Any, where: str) -> None:
    if key in section and section[key] != expected:
        raise ConfigError(
            f'{where}.{key} = {section[key]!r} is not supported (expected {expected!r})'
        )


def _dpt_from_golden(d: dict[str, Any], where: str) -> DPTHeadConfig:
    _expect(d, 'down_ratio', 1, where)
    return DPTHeadConfig(
        dim_in=int(d['dim_in']),
        patch_size=int(d['patch_size']),
        output_dim=int(d['output_dim']),
        activation=d['activation'],
        conf_activation=d['conf_activation'],
        features=int(d['features']),
        out_channels=tuple(int(c) for c in d['out_channels']),
        intermediate_layer_idx=tuple(int(i) for i in d['intermediate_layer_idx']),
        pos_embed=bool(d['pos_embed']),
        head_features_2=int(d.get('head_features_2', 32)),
        frames_chunk_size=int(d.get('frames_chunk_size', 8)),
    )


def vggt_config_from_golden(
    data: dict[str, Any], *, global_qk_norm: str = 'layernorm'
) -> VGGTConfig:
    """Build a :class:`VGGTConfig` from a golden-vector ``config.json``.

    Accepts the ``vggt_tiny/config.json`` layout, or a dict with a ``vggt`` section in that
    layout (``spa3r_tiny/config.json``).

    Args:
        data: the parsed JSON.
        global_qk_norm: q/k norm of the global blocks (``'rms'`` for Spa3R's aggregator; the
            golden files describe the stock VGGT they were loaded from).

    Returns:
        The config.

    Raises:
        ConfigError: if a required key is missing or a value is not supported.
    """
    if 'vggt' in data and isinstance(data['vggt'], dict):
        data = data['vggt']
    try:
        agg = data['aggregator']
        dino = data['patch_embed_dinov2']
        cam = data['camera_head']
        where = 'config.json'
        _expect(agg, 'aa_order', ['frame', 'global'], f'{where}.aggregator')
        _expect(agg, 'aa_block_size', 1, f'{where}.aggregator')
        _expect(dino, 'ffn_layer', 'mlp', f'{where}.patch_embed_dinov2')
        _expect(dino, 'qk_norm', False, f'{where}.patch_embed_dinov2')
        _expect(dino, 'interpolate_offset', 0.0, f'{where}.patch_embed_dinov2')
        _expect(cam, 'pose_encoding_type', 'absT_quaR_FoV', f'{where}.camera_head')
        dino_cfg = DinoV2Config(
            img_size=int(dino['img_size']),
            patch_size=int(dino['patch_size']),
            embed_dim=int(dino['embed_dim']),
            depth=int(dino['depth']),
            num_heads=int(dino['num_heads']),
            mlp_ratio=float(dino['mlp_ratio']),
            num_register_tokens=int(dino['num_register_tokens']),
            init_values=float(dino['init_values(layerscale)']),
            norm_eps=float(dino.get('norm_eps', 1e-6)),
            interpolate_antialias=bool(dino['interpolate_antialias']),
        )
        agg_cfg = AggregatorConfig(
            embed_dim=int(data['embed_dim']),
            depth=int(agg['depth']),
            num_heads=int(agg['num_heads']),
            mlp_ratio=float(agg['mlp_ratio']),
            num_register_tokens=int(agg['num_register_tokens']),
            qkv_bias=bool(agg['qkv_bias']),
            proj_bias=bool(agg['proj_bias']),
            ffn_bias=bool(agg['ffn_bias']),
            qk_norm=bool(agg['qk_norm']),
            global_qk_norm=global_qk_norm,
            rope_freq=float(agg['rope_freq']),
            init_values=float(agg['init_values']),
            patch_embed=dino_cfg,
        )
        if 'patch_start_idx' in agg and agg['patch_start_idx'] != agg_cfg.patch_start_idx:
            raise ConfigError(
                f'config.json aggregator.patch_start_idx = '
                f'{agg["patch_start_idx"]} != 1 + num_register_tokens'
            )
        cam_cfg = CameraHeadConfig(
            dim_in=int(cam['dim_in']),
            trunk_depth=int(cam['trunk_depth']),
            num_heads=int(cam['num_heads']),
            mlp_ratio=float(cam['mlp_ratio']),
            init_values=float(cam['init_values']),
            num_iterations=int(cam.get('num_iterations', 4)),
            trans_act=cam.get('trans_act', 'linear'),
            quat_act=cam.get('quat_act', 'linear'),
            fl_act=cam.get('fl_act', 'relu'),
        )
        return VGGTConfig(
            aggregator=agg_cfg,
            camera_head=cam_cfg,
            point_head=_dpt_from_golden(data['point_head'], f'{where}.point_head'),
            depth_head=_dpt_from_golden(data['depth_head'], f'{where}.depth_head'),
            enable_camera=bool(data.get('enable_camera', True)),
            enable_point=bool(data.get('enable_point', True)),
            enable_depth=bool(data.get('enable_depth', True)),
            enable_track=bool(data.get('enable_track', False)),
        )
    except KeyError as err:
        raise ConfigError(f'golden config.json lacks the key {err}') from None

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

"""Spa3R: multi-view VGGT features -> a fixed-size scene latent, trained by feature synthesis.

Inference (:meth:`Spa3R.encode`): the frozen VGGT aggregator (with RMSNorm q/k in its global
blocks) runs on all frames; the patch tokens of its last depth step ``[B, S, P, 2D_vggt]`` are
projected to width D, concatenated after Q learned queries and encoded by a transformer with 2-D
RoPE; the first Q outputs are the latents ``[B, Q, D]``.

Training (:meth:`Spa3R.loss`): some views are masked; the latents come from the context views only,
and the decoder must re-synthesise, for every view, the VGGT features (``geo``) and semantic
features (``sem``) from the latents and the view's camera (ray tokens + PRoPE attention). Cameras
and a depth target are pseudo-labels from the frozen VGGT camera and depth heads.

References:
    hustvl/Spa3R @ 07e0b60 ``spa3r/models/spa3r.py``; project spec sections 2.1-2.6.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
import logging

import torch
from torch import nn, Tensor

from spa3r_ros.configs.spa3r import Spa3RConfig
from spa3r_ros.models.inference import inference_context
from spa3r_ros.models.layers.attention import Attention
from spa3r_ros.models.layers.mlp import Mlp
from spa3r_ros.models.layers.rope import make_patch_positions, RotaryPositionEmbedding2D
from spa3r_ros.models.pose_encoding import pose_encoding_to_extri_intri
from spa3r_ros.models.spa3r import constants as K
from spa3r_ros.models.spa3r.camera_rays import extrinsics_to_viewmats, get_camera_rays
from spa3r_ros.models.spa3r.losses import depth_probe_loss, feature_losses, total_loss
from spa3r_ros.models.spa3r.masking import check_view_mask, random_view_mask, select_views
from spa3r_ros.models.spa3r.prope import PRoPEAttention, PRoPETransforms
from spa3r_ros.models.spa3r.transformer import Transformer
from spa3r_ros.models.vggt.aggregator import Aggregator
from spa3r_ros.models.vggt.camera_head import CameraHead
from spa3r_ros.models.vggt.dpt_head import DPTHead

logger = logging.getLogger(__name__)

#: Prefixes of the frozen VGGT parts inside a Spa3R state dict.
FROZEN_VGGT_PREFIXES = ('aggregator.', 'camera_head.', 'point_head.', 'depth_head.')


@dataclass
class Spa3RLossOutput:
    """Everything one training step computes.

    Attributes:
        losses: scalar losses keyed by :data:`~spa3r_ros.models.spa3r.constants.LOSS_TERMS` plus
            ``'loss'`` (their unweighted sum).
        view_mask: bool ``[B, V]``, True = masked view.
        latents: ``[B, Q, D]`` from the context views.
        pose_enc: ``[B, V, 9]`` camera pseudo-labels (last camera-head iteration).
        depth_gt: ``[B, V, H, W, 1]`` depth pseudo-labels.
        decoded: the decoder outputs (:meth:`Spa3R.decode` keys).
        aggregator_last: last aggregator step ``[B, V', T, 2D_vggt]`` of each run, keyed
            ``'masked'`` (asymmetric), or ``'context'`` and ``'full'`` (symmetric).
    """

    losses: dict[str, Tensor]
    view_mask: Tensor
    latents: Tensor
    pose_enc: Tensor
    depth_gt: Tensor
    decoded: dict[str, Tensor]
    aggregator_last: dict[str, Tensor] = field(default_factory=dict)


def init_weights_vit(module: nn.Module) -> None:
    """ViT (timm) initialisation used by Spa3R: Linear weights trunc-normal(0.02), biases zero."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Spa3R(nn.Module):
    """Spa3R scene encoder with its training decoder and the frozen VGGT it reads.

    Attribute names equal the reference's, so state-dict keys map 1:1 (``projection``,
    ``query_embed``, ``pose_tokenizer``, ``encoder``, ``decoder``, ``heads.geo``, ``heads.sem``,
    ``depth_prob``, and the frozen ``aggregator``, ``camera_head``, ``point_head``,
    ``depth_head``). The DINOv3 teacher is not built: semantic targets come with the batch
    (:mod:`spa3r_ros.training.psfm_targets`).

    The constructor only allocates and initialises parameters (it never reads files); load weights
    with :mod:`spa3r_ros.models.spa3r.checkpoint`.

    Args:
        config: architecture, see :class:`~spa3r_ros.configs.spa3r.Spa3RConfig`. With
            ``config.vggt`` None only Spa3R's own modules exist (no :meth:`encode`/:meth:`loss`).
        inference_only: build only what :meth:`encode` runs (``projection``, ``query_embed``,
            ``encoder`` and the frozen VGGT), not the training decoder and its heads
            (:data:`TRAINING_ONLY_MODULES`): what a deployed scene encoder needs, and what
            exported checkpoints hold. :meth:`decode` and :meth:`loss` then raise.
    """

    #: Top-level modules only PSFM training uses (absent when ``inference_only``).
    TRAINING_ONLY_MODULES = ('pose_tokenizer', 'decoder', 'heads', 'depth_prob')

    def __init__(self, config: Spa3RConfig, *, inference_only: bool = False) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        hidden = int(d * config.mlp_ratio)
        self.patch_size = config.patch_size
        self.num_queries = config.num_queries

        self.projection = nn.Linear(config.aggregator_dim, d)
        self.query_embed = nn.Embedding(config.num_queries, d)
        # Registration order is the reference's (it fixes the order of the seeded initialisation).
        self.inference_only = inference_only
        self.pose_tokenizer = None if inference_only else nn.Linear(3, d)
        rope = RotaryPositionEmbedding2D(config.rope_freq)
        self.encoder = Transformer(
            d,
            config.num_encoder_layers,
            partial(
                Attention,
                d,
                config.num_heads,
                qk_norm='rms' if config.qk_norm else None,
                rope=rope,
            ),
            num_register_tokens=config.num_register_tokens,
            mlp_ratio=config.mlp_ratio,
        )
        self.decoder: nn.Module | None = None
        self.heads: nn.ModuleDict | None = None
        self.depth_prob: nn.Module | None = None
        if not inference_only:
            self.decoder = Transformer(
                d,
                config.num_decoder_layers,
                partial(
                    PRoPEAttention,
                    d,
                    config.num_heads,
                    qk_norm=config.qk_norm,
                ),
                num_register_tokens=config.num_register_tokens,
                mlp_ratio=config.mlp_ratio,
            )
            self.heads = nn.ModuleDict(
                {
                    'geo': Mlp(d, hidden, config.aggregator_dim),
                    'sem': Mlp(d, hidden, config.sem_dim),
                }
            )
            self.depth_prob = Mlp(d, hidden, 1)
        self._init_weights()

        self.aggregator: nn.Module | None = None
        self.camera_head: nn.Module | None = None
        self.point_head: nn.Module | None = None
        self.depth_head: nn.Module | None = None
        if config.vggt is not None:
            self._build_frozen_vggt()

    def _init_weights(self) -> None:
        # Own modules only, before the frozen VGGT exists (the reference's build order).
        self.apply(init_weights_vit)
        nn.init.trunc_normal_(self.query_embed.weight, std=0.02)
        for transformer in (self.encoder, self.decoder):
            if transformer is not None and transformer.register_tokens is not None:
                nn.init.normal_(transformer.register_tokens, std=1e-6)

    def _build_frozen_vggt(self) -> None:
        vggt = self.config.vggt
        assert vggt is not None
        self.aggregator = Aggregator(vggt.aggregator)
        if vggt.enable_camera:
            self.camera_head = CameraHead(vggt.camera_head)
        if vggt.enable_point:
            self.point_head = DPTHead(vggt.point_head)
        if vggt.enable_depth:
            self.depth_head = DPTHead(vggt.depth_head)
        for module in (self.aggregator, self.camera_head, self.point_head, self.depth_head):
            if module is not None:
                module.requires_grad_(False)

    # ------------------------------------------------------------------ helpers

    def _grid(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        height, width = image_hw
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'image size {height}x{width} is not a multiple of the patch size '
                f'{self.patch_size}'
            )
        return height // self.patch_size, width // self.patch_size

    def _require_decoder(self, what: str) -> None:
        if self.inference_only:
            raise ValueError(f'Spa3R.{what} needs the training decoder; this Spa3R has none')

    def _require_vggt(self, what: str) -> None:
        if self.aggregator is None:
            raise ValueError(f'Spa3R.{what} needs the frozen VGGT, but config.vggt is None')

    # ------------------------------------------------------------------ encoder

    def encode_features(self, features: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        """Encode VGGT patch features of the context views into latents.

        Args:
            features: last aggregator step, patch tokens only, ``[B, S, P, aggregator_dim]``
                with ``P = hp * wp`` in row-major order.
            grid_hw: the patch grid ``(hp, wp)``.

        Returns:
            Latents ``[B, Q, D]``.

        Raises:
            ValueError: if the shapes do not fit.
        """
        if features.ndim != 4 or features.shape[-1] != self.config.aggregator_dim:
            raise ValueError(
                f'features must be [B, S, P, {self.config.aggregator_dim}], '
                f'got {tuple(features.shape)}'
            )
        batch, views, patches, _ = features.shape
        hp, wp = grid_hw
        if patches != hp * wp:
            raise ValueError(f'features have P = {patches} tokens, grid {hp}x{wp} needs {hp * wp}')
        x = self.projection(features).flatten(1, 2)  # [B, S*P, D]
        queries = self.query_embed.weight[None].expand(batch, -1, -1)
        # Patch (i, j) sits at (i, j); queries at (-1, -1), which the transformer's +1 shift maps
        # to the RoPE identity (0, 0), like its registers. No view index is encoded.
        pos = make_patch_positions(batch, hp, wp, features.device).repeat(1, views, 1)
        query_pos = pos.new_full((batch, self.num_queries, 2), -1)
        tokens = torch.cat([queries, x], dim=1)
        out = self.encoder(tokens, pos=torch.cat([query_pos, pos], dim=1))
        return out[:, : self.num_queries]

    def aggregate_last(
        self,
        images: Tensor,
        view_mask: Tensor | None = None,
        patch_tokens: Tensor | None = None,
    ) -> Tensor:
        """Last depth step of the frozen aggregator (only that step is kept).

        Args:
            images: ``[B, S, 3, H, W]`` RGB in [0, 1].
            view_mask: optional bool ``[B, S]`` (asymmetric masking), True = masked view.
            patch_tokens: optional ``[B, S, P, D_vggt]`` DINOv2 patch tokens of the frames,
                precomputed by ``aggregator.embed_frames`` (a per-frame cache such as
                :class:`~spa3r_ros.models.vggt.frame_cache.PatchTokenCache`).

        Returns:
            ``[B, S, T, aggregator_dim]`` with ``T = 5 + P`` (camera, registers, patches).
        """
        self._require_vggt('aggregate_last')
        outputs, _ = self.aggregator(
            images, output_layers=[-1], view_mask=view_mask, patch_tokens=patch_tokens
        )
        return outputs[-1]

    def encode_trainable(self, images: Tensor) -> Tensor:
        """Latents ``[B, Q, D]`` of ``images`` ``[B, S, 3, H, W]`` with gradients to the encoder.

        What :meth:`encode` computes, for training the encoder on a downstream loss: the frozen
        VGGT aggregator runs without a graph, the projection, queries and encoder with one; no
        autocast (the trainer sets the precision).
        """
        self._require_vggt('encode_trainable')
        grid = self._grid(tuple(images.shape[-2:]))
        with torch.no_grad():
            last = self.aggregate_last(images)
        return self.encode_features(last[:, :, self.aggregator.patch_start_idx :], grid)

    def encode(self, images: Tensor, patch_tokens: Tensor | None = None) -> Tensor:
        """Scene latents for inference.

        Runs without autograd (``torch.inference_mode``). On CUDA the computation is autocast to
        bfloat16 where the device supports it, else float16 (as the reference's encoder wrapper
        does); on other devices it stays in float32.

        Args:
            images: ``[B, S, 3, H, W]`` RGB in [0, 1]; H and W multiples of the patch size.
            patch_tokens: optional ``[B, S, P, D_vggt]`` precomputed patch tokens of the frames
                (the per-frame part of the backbone, cached by the scene engine); the result
                equals the uncached one.

        Returns:
            Latents ``[B, Q, D]`` (in the autocast dtype on CUDA).

        Raises:
            ValueError: bad image shape, or no frozen VGGT (``config.vggt`` is None).
        """
        self._require_vggt('encode')
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f'images must be [B, S, 3, H, W], got {tuple(images.shape)}')
        grid = self._grid(tuple(images.shape[-2:]))
        with inference_context(images.device):  # bf16/fp16 autocast on CUDA, as the reference
            last = self.aggregate_last(images, patch_tokens=patch_tokens)
            patches = last[:, :, self.aggregator.patch_start_idx :]
            return self.encode_features(patches, grid)

    # ------------------------------------------------------------------ decoder

    def decode(
        self,
        latents: Tensor,
        extrinsics: Tensor,
        intrinsics: Tensor,
        image_hw: tuple[int, int],
    ) -> dict[str, Tensor]:
        """Synthesise per-view features from latents and cameras.

        Args:
            latents: ``[B, Q, D]``.
            extrinsics: world-to-camera ``[R | t]`` ``[B, V, 3, 4]`` (OpenCV axes).
            intrinsics: pixel intrinsics ``[B, V, 3, 3]`` of the ``image_hw`` images.
            image_hw: ``(H, W)`` in pixels, multiples of the patch size.

        Returns:
            ``camera_rays`` ``[B, V, 3, hp, wp]``, ``pose_tokens`` ``[B*V, P, D]``,
            ``decoder_output_full`` ``[B*V, Q + P, D]``, ``decoder_tokens`` ``[B, V, P, D]``,
            ``pred_geo`` ``[B, V, P, aggregator_dim]``, ``pred_sem`` ``[B, V, P, sem_dim]`` and
            ``pred_depth_prob`` ``[B, V, P, 1]`` (computed on detached decoder tokens).

        Raises:
            ValueError: if the shapes do not fit, or the model is inference-only.
        """
        self._require_decoder('decode')
        if latents.ndim != 3 or latents.shape[1:] != (self.num_queries, self.config.embed_dim):
            raise ValueError(
                f'latents must be [B, {self.num_queries}, {self.config.embed_dim}], '
                f'got {tuple(latents.shape)}'
            )
        batch = latents.shape[0]
        if extrinsics.ndim != 4 or extrinsics.shape[0] != batch or extrinsics.shape[2:] != (3, 4):
            raise ValueError(
                f'extrinsics must be [{batch}, V, 3, 4], got {tuple(extrinsics.shape)}'
            )
        views = extrinsics.shape[1]
        if intrinsics.shape != (batch, views, 3, 3):
            raise ValueError(
                f'intrinsics must be [{batch}, {views}, 3, 3], got {tuple(intrinsics.shape)}'
            )
        hp, wp = self._grid(image_hw)
        patches = hp * wp

        grid_k = intrinsics.clone()
        grid_k[..., :2, :] /= self.patch_size  # pixel -> patch-grid units
        rays = get_camera_rays(grid_k, (hp, wp))  # [B, V, 3, hp, wp]
        pose_tokens = self.pose_tokenizer(rays.flatten(0, 1).flatten(2).transpose(1, 2))

        # One sequence per (scene, view): [latents (Q), ray tokens (P)]; registers come first.
        tokens = torch.cat([latents.repeat_interleave(views, dim=0), pose_tokens], dim=1)
        spatial = torch.zeros(
            self.decoder.num_register_tokens + tokens.shape[1],
            dtype=torch.bool,
            device=tokens.device,
        )
        spatial[-patches:] = True
        prope = PRoPETransforms.from_cameras(
            extrinsics_to_viewmats(extrinsics).flatten(0, 1)[:, None],
            intrinsics.flatten(0, 1)[:, None],
            grid_hw=(hp, wp),
            image_hw=image_hw,
            head_dim=self.config.head_dim,
            freq_base=self.config.prope_freq_base,
            spatial_mask=spatial,
        )
        full = self.decoder(tokens, prope=prope)  # [B*V, Q+P, D]
        per_view = full[:, self.num_queries :].reshape(batch, views, patches, -1)
        return {
            K.CAMERA_RAYS: rays,
            K.POSE_TOKENS: pose_tokens,
            K.DECODER_OUTPUT_FULL: full,
            K.DECODER_TOKENS: per_view,
            K.PRED_GEO: self.heads['geo'](per_view),
            K.PRED_SEM: self.heads['sem'](per_view),
            K.PRED_DEPTH_PROB: self.depth_prob(per_view.detach()),
        }

    # ------------------------------------------------------------------ training

    def forward_loss(
        self, batch: Mapping[str, Tensor], view_mask: Tensor | None = None
    ) -> Spa3RLossOutput:
        """One PSFM training step's forward pass, with every intermediate.

        Args:
            batch: ``images`` ``[B, V, 3, H, W]`` in [0, 1] and ``sem_targets``
                ``[B, V, P, sem_dim]`` (DINOv3 patch features on the patch grid; computing them
                is outside this class).
            view_mask: bool ``[B, V]`` (True = masked view; view 0 must be context, every scene
                the same number of context views); drawn with :func:`random_view_mask` from
                torch's global RNG when None.

        Returns:
            A :class:`Spa3RLossOutput`.

        Raises:
            ValueError: bad shapes or mask, or a model without VGGT camera/depth heads.
        """
        self._require_vggt('forward_loss')
        self._require_decoder('forward_loss')
        if self.camera_head is None or self.depth_head is None:
            raise ValueError('Spa3R.forward_loss needs the VGGT camera and depth heads')
        images = batch[K.BATCH_IMAGES]
        sem_targets = batch[K.BATCH_SEM_TARGETS]
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f'images must be [B, V, 3, H, W], got {tuple(images.shape)}')
        bsz, views = images.shape[:2]
        image_hw = (int(images.shape[-2]), int(images.shape[-1]))
        grid = self._grid(image_hw)
        expected = (bsz, views, grid[0] * grid[1], self.config.sem_dim)
        if tuple(sem_targets.shape) != expected:
            raise ValueError(
                f'sem_targets must be {list(expected)}, got {list(sem_targets.shape)}'
            )
        if view_mask is None:
            view_mask = random_view_mask(bsz, views, self.config.mask_ratio, device=images.device)
        check_view_mask(view_mask, bsz, views)
        view_mask = view_mask.to(images.device)

        # Only the steps the heads read are computed: the last (camera head, features) and the
        # depth head's intermediate layers.
        layers = {-1, *self.depth_head.config.intermediate_layer_idx}
        aggregator_last = {}
        with torch.no_grad():
            if self.config.asymmetric_masking:
                # One run; context views attend only to context views.
                tokens, start = self.aggregator(images, output_layers=layers, view_mask=view_mask)
                aggregator_last['masked'] = tokens[-1]
                f_tgt = tokens[-1][:, :, start:]
                f_ctx = select_views(f_tgt, ~view_mask)
            else:
                # Two runs: the context features come from a VGGT that never saw the targets.
                ctx, start = self.aggregator(select_views(images, ~view_mask), output_layers=[-1])
                aggregator_last['context'] = ctx[-1]
                f_ctx = ctx[-1][:, :, start:]
                tokens, start = self.aggregator(images, output_layers=layers)
                aggregator_last['full'] = tokens[-1]
                f_tgt = tokens[-1][:, :, start:]
            pose_enc = self.camera_head(tokens)[-1]
            depth_gt, _ = self.depth_head(tokens, images=images, patch_start_idx=start)

        latents = self.encode_features(f_ctx, grid)
        extrinsics, intrinsics = pose_encoding_to_extri_intri(pose_enc, image_hw)
        decoded = self.decode(latents, extrinsics, intrinsics, image_hw)
        losses: dict[str, Tensor] = {}
        losses[K.LOSS_GEO_L1], losses[K.LOSS_GEO_COS] = feature_losses(decoded[K.PRED_GEO], f_tgt)
        losses[K.LOSS_SEM_L1], losses[K.LOSS_SEM_COS] = feature_losses(
            decoded[K.PRED_SEM], sem_targets
        )
        losses[K.LOSS_DEPTH_PROB] = depth_probe_loss(decoded[K.PRED_DEPTH_PROB], depth_gt, grid)
        losses[K.LOSS_TOTAL] = total_loss(dict(losses))
        return Spa3RLossOutput(
            losses=losses,
            view_mask=view_mask,
            latents=latents,
            pose_enc=pose_enc,
            depth_gt=depth_gt,
            decoded=decoded,
            aggregator_last=aggregator_last,
        )

    def loss(
        self, batch: Mapping[str, Tensor], view_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Scalar training losses (see :meth:`forward_loss` for the arguments).

        Returns:
            ``geo/l1``, ``geo/cos``, ``sem/l1``, ``sem/cos``, ``depth_prob`` and ``loss`` (their
            unweighted sum, the quantity the reference optimises).
        """
        return self.forward_loss(batch, view_mask).losses

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

"""Spa3-VLM on transformers 5.x: Qwen2.5-VL composed with the geometry injector.

The reference subclasses transformers-4.50's ``Qwen2_5_VLForConditionalGeneration`` and rewrites
its ``forward``. We compose instead, through the seams transformers 5.x exposes:

1. ``Qwen2_5_VLModel.get_image_features`` gives the merged vision tokens of each image;
2. the geometry injector adds the scene latent to them (image branch only: a frame passed as
   video gets no geometry, spa3r_spec.md section 3.3);
3. ``Qwen2_5_VLForConditionalGeneration.forward(mm_encoder_outputs=...)`` scatters the
   precomputed tokens into the ``<|image_pad|>`` positions and runs the language model.

The one trap (transformers5_notes.md): 5.x builds the 3-D M-RoPE positions only when it gets
``mm_token_type_ids`` (1 at image tokens, 2 at video tokens, 0 elsewhere). Without them it falls
back to 1-D positions silently, so :meth:`Spa3VLM.forward` always derives them from the ids.

A long prompt pass can be stopped between layers (:meth:`Spa3VLM.stop_between_layers`): a cancel
or a deadline then ends it within one language-model layer (or one vision-tower block) instead of
after the whole pass.

The paper's no-geometry ablation is a switch, :attr:`Spa3VLM.use_geometry` (default True): when it
is False the geometry injector is bypassed (the image tokens reach the language model untouched,
exactly as when no latent is given) and :meth:`Spa3VLM.encode_geometry` returns a zero latent
without running the Spa3R encoder, so callers that always pass a latent need no change.
"""

from collections.abc import Callable, Iterator, Sequence
import contextlib
import logging
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling, CausalLMOutputWithPast

from spa3r_ros.configs.vlm import VLMGeometryConfig
from spa3r_ros.models.vlm.geometry import GeometryInjector

logger = logging.getLogger(__name__)

# Values of transformers' mm_token_type_ids.
TEXT_TOKEN_TYPE = 0
IMAGE_TOKEN_TYPE = 1
VIDEO_TOKEN_TYPE = 2


class ForwardInterrupted(Exception):
    """A forward pass stopped between two layers because its stop callable returned true.

    Attributes:
        layers_run: language-model layers and vision blocks that completed inside the
            :meth:`Spa3VLM.stop_between_layers` block before the stop.
    """

    def __init__(self, layers_run: int) -> None:
        super().__init__(f'forward pass stopped after {layers_run} layer(s)')
        self.layers_run = layers_run


@runtime_checkable
class GeometryEncoder(Protocol):
    """Anything that turns the frames of a scene into a Spa3R-style latent.

    ``encode(images)`` takes ``[B, S, 3, H, W]`` RGB in [0, 1] (VGGT's crop preprocessing) and
    returns latents ``[B, Q, E]``. ``spa3r_ros.models.spa3r.model.Spa3R`` is one.
    """

    def encode(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - protocol
        """Return ``[B, Q, E]`` latents for ``[B, S, 3, H, W]`` frames."""
        ...


def geometry_config_from_qwen(
    config: Qwen2_5_VLConfig,
    *,
    spa3r_embed_dim: int | None = None,
    spa3r_num_queries: int | None = None,
) -> VLMGeometryConfig:
    """Geometry module sizes for a Qwen2.5-VL config, as the reference derives them.

    The width and head count are the language model's; the latent sizes come from the config's
    ``spa3r_embed_dim``/``spa3r_num_queries`` fields (the published layout) unless given.

    Args:
        config: the Qwen2.5-VL config (5.x layout, sizes under ``text_config``).
        spa3r_embed_dim: latent width; defaults to ``config.spa3r_embed_dim`` or 768.
        spa3r_num_queries: latent length; defaults to ``config.spa3r_num_queries`` or 256.

    Returns:
        The matching :class:`VLMGeometryConfig`.
    """
    text = config.text_config
    return VLMGeometryConfig(
        hidden_size=text.hidden_size,
        num_attention_heads=text.num_attention_heads,
        spa3r_embed_dim=spa3r_embed_dim or getattr(config, 'spa3r_embed_dim', None) or 768,
        spa3r_num_queries=spa3r_num_queries or getattr(config, 'spa3r_num_queries', None) or 256,
    )


def mm_token_types(input_ids: torch.Tensor, config: Qwen2_5_VLConfig) -> torch.Tensor:
    """Modality of every token: 1 at image placeholders, 2 at video placeholders, 0 elsewhere.

    Args:
        input_ids: ``[B, L]`` token ids.
        config: the Qwen2.5-VL config (for the placeholder ids).

    Returns:
        ``[B, L]`` int tensor, what transformers 5.x calls ``mm_token_type_ids``.
    """
    types = torch.zeros_like(input_ids, dtype=torch.int)
    types[input_ids == config.image_token_id] = IMAGE_TOKEN_TYPE
    types[input_ids == config.video_token_id] = VIDEO_TOKEN_TYPE
    return types


class Spa3VLM(nn.Module):
    """Qwen2.5-VL with Spa3R geometry injected into its image tokens.

    Args:
        qwen_config: the Qwen2.5-VL config (5.x layout; a 4.50-era HF config.json builds it as is).
        geometry_config: sizes of the geometry modules; derived from ``qwen_config`` when None.
        geometry_encoder: optional module mapping frames ``[B, S, 3, H, W]`` to latents
            ``[B, Q, E]`` through ``encode`` (a Spa3R). Without it, callers pass latents.

    Submodules: ``qwen`` (a stock ``Qwen2_5_VLForConditionalGeneration``), ``injector``
    (:class:`GeometryInjector`, reference parameter names) and ``geometry_encoder``. The
    constructor builds random weights; loading is ``spa3r_ros.models.vlm.checkpoint``'s job.

    Attributes:
        use_geometry: the Spa3R branch switch (True by default). False is the no-geometry
            ablation (``spa3r eval --no-geometry``): :meth:`inject_geometry` returns the image
            tokens unchanged and :meth:`encode_geometry` returns zeros without running the
            encoder. Not a weight: it is not saved with the model.
    """

    def __init__(
        self,
        qwen_config: Qwen2_5_VLConfig,
        geometry_config: VLMGeometryConfig | None = None,
        geometry_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if geometry_config is None:
            geometry_config = geometry_config_from_qwen(qwen_config)
        if geometry_config.hidden_size != qwen_config.text_config.hidden_size:
            raise ValueError(
                f'geometry hidden_size {geometry_config.hidden_size} differs from the language '
                f'model width {qwen_config.text_config.hidden_size}'
            )
        if geometry_encoder is not None and not isinstance(geometry_encoder, GeometryEncoder):
            raise ValueError(
                f'geometry_encoder needs an encode(images) method, got {type(geometry_encoder)}'
            )
        self.config = qwen_config
        self.geometry_config = geometry_config
        self.qwen = Qwen2_5_VLForConditionalGeneration(qwen_config)
        self.injector = GeometryInjector(geometry_config)
        self.geometry_encoder = geometry_encoder
        self.use_geometry = True

    @property
    def device(self) -> torch.device:
        """Device of the language model's weights."""
        return self.qwen.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the language model's weights."""
        return self.qwen.lm_head.weight.dtype

    @contextlib.contextmanager
    def stop_between_layers(self, stop: Callable[[], bool] | None) -> Iterator[None]:
        """Inside this block, forward passes check ``stop`` before every layer.

        Every decoder layer of the language model, every block of Qwen's vision tower and every
        block of the geometry encoder (each member of its ``ModuleList``s: the Spa3R
        aggregator's frame and global blocks, its encoder's) checks ``stop()`` before it runs;
        when it returns true the pass raises :class:`ForwardInterrupted` before that layer, so
        a stop is honoured within one layer's time. Nothing the pass was building is kept by the
        model; a KV cache passed in holds the layers that ran, so callers extend only a copy they
        can throw away.

        On CUDA each check first waits for the work already queued (one stream synchronisation
        per layer): otherwise the host queues the whole pass in milliseconds, every check passes
        before the stop comes, and the GPU runs the pass to its end regardless. Use it for prompt
        passes, not for one-token decoding steps, where a check per token is enough.

        Not for concurrent forwards on this model (the hooks are the module's): callers
        serialise model use (the scene engine holds its model lock).

        Args:
            stop: the stop condition (a cancel flag, a deadline); None checks nothing.

        Raises:
            ForwardInterrupted: from a forward inside the block, when ``stop()`` turned true.
        """
        if stop is None:
            yield
            return
        layers = [*self.qwen.model.language_model.layers, *self.qwen.model.visual.blocks]
        if self.geometry_encoder is not None:
            for module in self.geometry_encoder.modules():
                if isinstance(module, nn.ModuleList):
                    layers.extend(module)
        device = self.device
        ran = [0]

        def check(_module: nn.Module, _args: tuple) -> None:
            if device.type == 'cuda':
                torch.cuda.current_stream(device).synchronize()
            if stop():
                raise ForwardInterrupted(ran[0])
            ran[0] += 1

        handles = [layer.register_forward_pre_hook(check) for layer in layers]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @torch.no_grad()
    def encode_geometry(
        self, images: torch.Tensor, patch_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run the geometry encoder (frozen, eval mode, no gradients).

        Args:
            images: ``[B, S, 3, H, W]`` frames in [0, 1] (VGGT crop preprocessing).
            patch_tokens: optional precomputed backbone patch tokens ``[B, S, P, D_vggt]`` of the
                frames, passed on to ``geometry_encoder.encode`` (a Spa3R accepts them).

        Returns:
            ``[B, Q, E]`` latents; zeros (the encoder not run) when :attr:`use_geometry` is False.

        Raises:
            ValueError: if there is no geometry encoder or ``images`` is not 5-D.
        """
        if self.geometry_encoder is None:
            raise ValueError('this Spa3VLM has no geometry encoder; pass geometry_latents instead')
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f'images must be [B, S, 3, H, W], got {tuple(images.shape)}')
        if not self.use_geometry:
            # The ablation: the latent is never used, so the encoder's time is not spent. A
            # tensor of the right shape keeps scene snapshots and caches working unchanged.
            sizes = self.geometry_config
            return images.new_zeros(
                images.shape[0], sizes.spa3r_num_queries, sizes.spa3r_embed_dim
            )
        self.geometry_encoder.eval()
        if patch_tokens is None:
            return self.geometry_encoder.encode(images)
        return self.geometry_encoder.encode(images, patch_tokens=patch_tokens)

    def image_features(
        self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Merged Qwen vision tokens, one tensor per image (no geometry yet).

        Args:
            pixel_values: ``[sum_i t_i*h_i*w_i, 3*T*14*14]`` patchified pixels (Qwen processor).
            image_grid_thw: ``[I, 3]`` patch grid (t, h, w) of each image.

        Returns:
            I tensors ``[t_i*h_i*w_i / 4, D]``.
        """
        out = self.qwen.model.get_image_features(pixel_values, image_grid_thw, return_dict=True)
        return tuple(out.pooler_output)

    def inject_geometry(
        self,
        image_features: Sequence[torch.Tensor],
        latents: torch.Tensor,
        images_per_sample: Sequence[int],
    ) -> tuple[torch.Tensor, ...]:
        """Add each sample's latent to the vision tokens of its images.

        Args:
            image_features: I tensors ``[n_i, D]``, in prompt order over the whole batch.
            latents: ``[B, Q, E]``, one latent per sample.
            images_per_sample: how many of the I images belong to each of the B samples.

        Returns:
            I tensors ``[n_i, D]`` with geometry; the input tensors unchanged when
            :attr:`use_geometry` is False (the injector bypassed).

        Raises:
            ValueError: if the counts do not add up.
        """
        if latents.ndim != 3 or latents.shape[0] != len(images_per_sample):
            raise ValueError(
                f'latents must be [B, Q, E] with B = {len(images_per_sample)} samples, '
                f'got {tuple(latents.shape)}'
            )
        if sum(images_per_sample) != len(image_features):
            raise ValueError(
                f'{len(image_features)} images but images_per_sample {list(images_per_sample)} '
                f'sums to {sum(images_per_sample)}'
            )
        if not self.use_geometry:
            return tuple(image_features)
        out: list[torch.Tensor] = []
        start = 0
        for b, count in enumerate(images_per_sample):
            if count == 0:
                continue
            feats = image_features[start : start + count]
            sizes = [f.shape[0] for f in feats]
            # One scene's frames form one query sequence, as in the reference (batch of one).
            injected = self.injector(torch.cat(feats, dim=0), latents[b : b + 1])
            out.extend(torch.split(injected, sizes))
            start += count
        return tuple(out)

    def _images_per_sample(
        self, input_ids: torch.Tensor, image_features: Sequence[torch.Tensor]
    ) -> list[int]:
        """Assign images to samples by counting each sample's image placeholder tokens."""
        tokens_per_sample = (input_ids == self.config.image_token_id).sum(dim=1).tolist()
        counts: list[int] = []
        index = 0
        for expected in tokens_per_sample:
            taken = 0
            start = index
            while taken < expected and index < len(image_features):
                taken += image_features[index].shape[0]
                index += 1
            if taken != expected:
                raise ValueError(
                    f'image tokens and features do not match: a sample has {expected} image '
                    f'tokens, its images give {taken} features'
                )
            counts.append(index - start)
        if index != len(image_features):
            raise ValueError(
                f'{len(image_features)} images given but the prompt has placeholders for {index}'
            )
        return counts

    def prepare_image_embeds(
        self,
        input_ids: torch.Tensor,
        *,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        image_features: Sequence[torch.Tensor] | None = None,
        geometry_encoder_inputs: torch.Tensor | None = None,
        geometry_latents: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...] | None:
        """Vision tokens of the prompt's images, with geometry when a latent is available.

        Args:
            input_ids: ``[B, L]`` token ids (to assign images to samples).
            pixel_values: patchified pixels of all images (or give ``image_features``).
            image_grid_thw: ``[I, 3]`` grids, needed with ``pixel_values``.
            image_features: precomputed per-image vision tokens (the per-frame cache).
            geometry_encoder_inputs: ``[B, S, 3, H, W]`` frames for the geometry encoder.
            geometry_latents: ``[B, Q, E]`` precomputed latents (wins over the frames).

        Returns:
            Per-image tokens ``[n_i, D]``, or None when the prompt has no images.
        """
        if image_features is None:
            if pixel_values is None:
                return None
            if image_grid_thw is None:
                raise ValueError('pixel_values needs image_grid_thw')
            image_features = self.image_features(pixel_values, image_grid_thw)
        image_features = tuple(image_features)
        per_sample = self._images_per_sample(input_ids, image_features)
        latents = geometry_latents
        if latents is None and geometry_encoder_inputs is not None:
            latents = self.encode_geometry(geometry_encoder_inputs)
        if latents is None:
            return image_features
        return self.inject_geometry(
            image_features, latents.to(image_features[0].dtype), per_sample
        )

    def rope_positions(
        self,
        input_ids: torch.Tensor,
        image_grid_thw: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """3-D M-RoPE positions of a whole prompt (transformers' public ``get_rope_index``).

        Args:
            input_ids: ``[B, L]`` token ids.
            image_grid_thw: ``[I, 3]`` image grids, in prompt order.
            video_grid_thw: ``[V, 3]`` video grids.
            attention_mask: ``[B, L]`` 1 for real tokens (left padding allowed).

        Returns:
            ``position_ids`` ``[3, B, L]`` and ``rope_deltas`` ``[B, 1]`` (position of the next
            text token minus its index).
        """
        if image_grid_thw is None and video_grid_thw is None:
            length = input_ids.shape[1]
            positions = torch.arange(length, device=input_ids.device).expand(3, *input_ids.shape)
            deltas = torch.zeros(input_ids.shape[0], 1, dtype=torch.long, device=input_ids.device)
            return positions.clone(), deltas
        return self.qwen.model.get_rope_index(
            input_ids,
            mm_token_type_ids=mm_token_types(input_ids, self.config),
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            attention_mask=attention_mask,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        image_features: Sequence[torch.Tensor] | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        geometry_encoder_inputs: torch.Tensor | None = None,
        geometry_latents: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values=None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        output_hidden_states: bool = False,
    ) -> CausalLMOutputWithPast:
        """Logits of a prompt whose images carry scene geometry.

        Args:
            input_ids: ``[B, L]`` ids with ``<|image_pad|>`` placeholders (one per vision token).
            attention_mask: ``[B, L]`` 1 for real tokens.
            pixel_values: patchified image pixels (Qwen processor output).
            image_grid_thw: ``[I, 3]`` image grids; always needed when the prompt has images
                (for the 3-D positions), also with ``image_features``.
            image_features: precomputed per-image vision tokens, instead of ``pixel_values``.
            pixel_values_videos: patchified video pixels (no geometry is added to videos).
            video_grid_thw: ``[V, 3]`` video grids.
            geometry_encoder_inputs: ``[B, S, 3, H, W]`` frames in [0, 1] for the encoder.
            geometry_latents: ``[B, Q, E]`` latents computed elsewhere.
            position_ids: ``[3, B, L]`` positions; computed from the grids when None.
            past_key_values: a transformers cache to extend (prefix reuse, decoding).
            use_cache: return the updated cache.
            logits_to_keep: keep logits of the last this-many positions only (0 = all).
            output_hidden_states: also return the language model's hidden states (GASP's deep
                supervision and ``spa3r probe correspondence`` read the visual tokens' states).

        Returns:
            transformers' ``CausalLMOutputWithPast``: ``logits`` ``[B, L, V]``, and
            ``past_key_values`` when ``use_cache``; with ``output_hidden_states`` also
            ``hidden_states``, a tuple of ``num_hidden_layers + 1`` tensors ``[B, L, D]``: the
            input embeddings (image tokens with geometry), then each decoder layer's output
            (the last one after the final norm, transformers' convention).
        """
        if input_ids.ndim != 2:
            raise ValueError(f'input_ids must be [B, L], got {tuple(input_ids.shape)}')
        if (pixel_values is not None or image_features is not None) and image_grid_thw is None:
            # Without grids the 3-D positions cannot be built and 5.x would silently use 1-D ones.
            raise ValueError('images were given without image_grid_thw')
        if pixel_values_videos is not None and video_grid_thw is None:
            raise ValueError('pixel_values_videos were given without video_grid_thw')
        image_embeds = self.prepare_image_embeds(
            input_ids,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            image_features=image_features,
            geometry_encoder_inputs=geometry_encoder_inputs,
            geometry_latents=geometry_latents,
        )
        encoder_outputs: dict[str, BaseModelOutputWithPooling] = {}
        if image_embeds is not None:
            encoder_outputs['image'] = BaseModelOutputWithPooling(pooler_output=image_embeds)
        if pixel_values_videos is not None:
            # Videos take Qwen's own path untouched: the reference adds no geometry to them.
            encoder_outputs['video'] = self.qwen.model.get_video_features(
                pixel_values_videos, video_grid_thw, return_dict=True
            )
        has_vision = image_grid_thw is not None or video_grid_thw is not None
        if position_ids is None and has_vision and past_key_values is None:
            position_ids, rope_deltas = self.rope_positions(
                input_ids, image_grid_thw, video_grid_thw, attention_mask
            )
            self.qwen.model.rope_deltas = rope_deltas
        return self.qwen(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            mm_token_type_ids=mm_token_types(input_ids, self.config),
            mm_encoder_outputs=encoder_outputs or None,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            output_hidden_states=output_hidden_states,
        )

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

"""Configuration of Spa3-VLM: geometry modules, frame sampling, pixel budgets, generation.

The defaults of :class:`VLMGeometryConfig` are the Qwen2.5-VL-3B sizes of the published
Spa3-VLM (spa3r_spec.md section 3.2). The sampling, pixel and generation defaults are the ones the
reference *evaluation* (lmms-eval on VSI-Bench, spa3r_spec.md sections 3.5 and 4) ran with; each
field's description says where its default comes from, so a score can be reproduced.
"""

from dataclasses import dataclass

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.core.errors import ConfigError


@dataclass(frozen=True)
class VLMGeometryConfig:
    """Sizes of the geometry modules that inject the Spa3R latent into Qwen's image tokens.

    Attributes:
        hidden_size: width D of the language model (Qwen2.5-VL-3B: 2048, 7B: 3584).
        num_attention_heads: heads of the image-to-latent cross-attention (the reference takes the
            language model's head count: 16 for 3B, 28 for 7B).
        spa3r_embed_dim: width E of the Spa3R latent (768 in the published model).
        spa3r_num_queries: number Q of latent tokens per scene (256 in the published model).
        adaptor_reduction: the gated adaptor's bottleneck is hidden_size // adaptor_reduction.
        norm_eps: epsilon of the LayerNorms (q/k norms and the output norm), PyTorch's default.
    """

    hidden_size: int = param(
        2048,
        description='Width of the language model (3B: 2048, 7B: 3584)',
        bounds=(1, None),
        read_only=True,
    )
    num_attention_heads: int = param(
        16,
        description='Heads of the image-to-latent cross-attention (3B: 16, 7B: 28)',
        bounds=(1, None),
        read_only=True,
    )
    spa3r_embed_dim: int = param(
        768, description='Width of the Spa3R scene latent', bounds=(1, None), read_only=True
    )
    spa3r_num_queries: int = param(
        256, description='Latent tokens per scene', bounds=(1, None), read_only=True
    )
    adaptor_reduction: int = param(
        4,
        description='Bottleneck factor of the gated adaptor (hidden // 4 in the reference)',
        bounds=(1, None),
        read_only=True,
    )
    norm_eps: float = param(
        1e-5, description='Epsilon of the geometry LayerNorms', bounds=(0.0, 1.0), read_only=True
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f'VLMGeometryConfig.hidden_size = {self.hidden_size} is not divisible by '
                f'num_attention_heads = {self.num_attention_heads}'
            )
        if self.hidden_size < self.adaptor_reduction:
            raise ConfigError(
                f'VLMGeometryConfig.adaptor_reduction = {self.adaptor_reduction} exceeds '
                f'hidden_size = {self.hidden_size}'
            )

    @property
    def head_dim(self) -> int:
        """Width of one cross-attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def adaptor_dim(self) -> int:
        """Bottleneck width of the gated adaptor."""
        return self.hidden_size // self.adaptor_reduction


@dataclass(frozen=True)
class FrameSamplingConfig:
    """Which buffered frames a question sees.

    Attributes:
        max_num_frames: at most this many frames are passed, as separate images; the reference
            evaluation uses 32 (lmms-eval's Qwen2.5-VL default), its fine-tuning used at most 8.
        strategy: 'linspace' picks linspace(0, n - 1, k) cast to int (the reference's
            evaluation sampler); 'latest' keeps the newest k frames.
    """

    max_num_frames: int = param(
        32,
        description='Most frames per question (reference eval: 32; its SFT: 8)',
        bounds=(1, 256),
    )
    strategy: str = param(
        'linspace',
        description='Frame sampler: linspace (reference eval) or latest',
        choices=('linspace', 'latest'),
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class PixelBudgetConfig:
    """Image sizes of the two branches (geometry and Qwen vision).

    Attributes:
        geometry_width: frames are resized to this width (height keeps the aspect, rounded to a
            multiple of 14, centre-cropped to at most this value) for Spa3R: VGGT's crop mode, 518.
        min_pixels: lower pixel bound of Qwen's resize. The reference's effective value is 12,544
            (16 * 28 * 28, saved by its fine-tuning); lmms-eval passes 200,704 but with
            transformers 4.50 that argument has no effect (spa3r_spec.md 3.5). With 12,544 a
            504x392 frame keeps its size and gives 252 tokens.
        max_pixels: upper pixel bound of Qwen's resize; the effective reference value is 451,584
            (576 * 28 * 28).
    """

    geometry_width: int = param(
        518,
        description='Frame width for the geometry branch (VGGT crop mode)',
        bounds=(14, 4096),
        unit='px',
        read_only=True,
    )
    min_pixels: int = param(
        12544,
        description='Lower pixel bound of the Qwen resize (reference effective: 12544)',
        bounds=(784, None),
        unit='px',
    )
    max_pixels: int = param(
        451584,
        description='Upper pixel bound of the Qwen resize (reference effective: 451584)',
        bounds=(784, None),
        unit='px',
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.geometry_width % 14:
            raise ConfigError(
                f'PixelBudgetConfig.geometry_width = {self.geometry_width} is not a multiple of 14'
            )
        if self.min_pixels > self.max_pixels:
            raise ConfigError(
                f'PixelBudgetConfig.min_pixels = {self.min_pixels} exceeds '
                f'max_pixels = {self.max_pixels}'
            )


@dataclass(frozen=True)
class VLMGenerationConfig:
    """Decoding defaults.

    Attributes:
        max_new_tokens: generation budget; VSI-Bench's task uses 16 (greedy, temperature 0).
        system_prompt: the chat system message; the reference uses Qwen's default.
        post_prompts: 'lmms_eval' appends the benchmark's answer-format instruction (what the
            model was evaluated with); 'none' sends the bare question.
    """

    max_new_tokens: int = param(
        16, description='Generated tokens at most (VSI-Bench: 16, greedy)', bounds=(1, 4096)
    )
    system_prompt: str = param(
        'You are a helpful assistant.', description='Chat system message (reference default)'
    )
    post_prompts: str = param(
        'lmms_eval',
        description='Answer-format instructions: lmms_eval (reference) or none',
        choices=('lmms_eval', 'none'),
    )

    def __post_init__(self) -> None:
        check_fields(self)

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

"""Memory per scene frame (keyframe or current view), by what the engine and the models keep.

Per frame of the scene the engine keeps, on the host:

* ``rgb``: the model-resolution pixels, ``H x W x 3`` uint8 (a 640 x 480 camera frame becomes
  518 x 392 for the official models): what a saved scene stores;
* ``qwen_pixels``: Qwen's patchified input, ``patches x 1176`` float32 (kept so the vision
  tokens can be recomputed when the cache drops them);
* ``thumbnail``: the keyframe policy's grey thumbnail, float32.

and the models keep, on their device:

* ``patch_tokens``: the backbone's patch embedding (``(H/14) (W/14) x backbone width``);
* ``vision_tokens``: Qwen's merged vision tokens (``patches / 4 x vision output width``);
* ``prefix_kv``: the language model's key/value cache of the frame's prompt tokens (its vision
  tokens plus ``<|vision_start|>`` and ``<|vision_end|>``), ``layers x 2 x kv heads x head width``
  per token.

None of it depends on the camera's resolution beyond its aspect ratio: a keyframe's camera
pixels are dropped once it is prepared. :func:`frame_memory` computes the bytes from a model's
dimensions (a test checks the formula against the tensors of the tiny-random bundle);
``python -m spa3r_ros.scene.memory`` prints the table the README quotes, for the tiny-random
and official presets. Not per frame, and so not counted: the policy's ``N x N`` distance
matrix (8 bytes per pair), the scene latent (``Q x E`` per scene), and two holders of camera
pixels at the camera's resolution: the newest frame seen (the current view, which the scene
update prepares; the engine holds it whole until a newer frame replaces it) and the frames
waiting in the ingest queue.
"""

import argparse
from dataclasses import dataclass
import sys

import numpy as np

from spa3r_ros.configs.keyframes import KeyframeConfig
from spa3r_ros.configs.vlm import PixelBudgetConfig

# Qwen2.5-VL's vision tower: 14-pixel patches, two frames per temporal patch, 2 x 2 merge.
PATCH = 14
MERGE = 2
# Prompt tokens of a frame besides its vision tokens: <|vision_start|> and <|vision_end|>.
FRAME_MARKER_TOKENS = 2


@dataclass(frozen=True)
class ModelDims:
    """The model sizes the memory of a frame depends on.

    Attributes:
        name: the preset.
        pixels: the image sizes of both branches (geometry width, Qwen's pixel budget).
        backbone_width: width of the backbone's patch tokens (VGGT-1B: 1024).
        vision_width: width of Qwen's merged vision tokens (its language model's width).
        layers: decoder layers of the language model.
        kv_heads: key/value heads per layer.
        head_width: width of one attention head.
        dtype_bytes: bytes per element of the models' tensors (bf16 on GPUs: 2; CPU fp32: 4).
    """

    name: str
    pixels: PixelBudgetConfig
    backbone_width: int
    vision_width: int
    layers: int
    kv_heads: int
    head_width: int
    dtype_bytes: int


@dataclass(frozen=True)
class FrameMemory:
    """Bytes one scene frame costs (see the module docstring for each part).

    Attributes:
        model_size: ``(width, height)`` of the frame at the geometry branch's resolution.
        vision_tokens: Qwen vision tokens of the frame.
        rgb: host bytes of the model-resolution pixels.
        qwen_pixels: host bytes of Qwen's patchified input.
        thumbnail: host bytes of the policy's thumbnail.
        patch_tokens: device bytes of the cached backbone patch tokens.
        vision_cache: device bytes of the cached vision tokens.
        prefix_kv: device bytes of the frame's share of the prompt prefix's KV cache.
    """

    model_size: tuple[int, int]
    vision_tokens: int
    rgb: int
    qwen_pixels: int
    thumbnail: int
    patch_tokens: int
    vision_cache: int
    prefix_kv: int

    @property
    def host(self) -> int:
        """Bytes kept by the engine in host memory."""
        return self.rgb + self.qwen_pixels + self.thumbnail

    @property
    def device(self) -> int:
        """Bytes kept by the models' caches on their device."""
        return self.patch_tokens + self.vision_cache + self.prefix_kv


def frame_memory(
    dims: ModelDims,
    camera_size: tuple[int, int] = (640, 480),
    geometry_mode: str = 'crop',
    thumbnail: tuple[int, int] | None = None,
) -> FrameMemory:
    """The bytes a frame of this camera size costs with these models.

    The frame sizes come from running the real preprocessing (VGGT's resize and crop, Qwen's
    image processor with the preset's pixel budget) on a blank frame.

    Args:
        dims: the models' sizes.
        camera_size: ``(width, height)`` of the camera's frames (only the aspect ratio matters).
        geometry_mode: ``'crop'`` or ``'pad'`` (``scene.geometry_mode``).
        thumbnail: ``(width, height)`` of the policy's thumbnail (default: the config default).

    Returns:
        The bytes of each part.
    """
    from spa3r_ros.models.preprocess import preprocess_frame
    from spa3r_ros.models.vlm.preprocess import build_qwen_image_processor, frame_inputs

    if thumbnail is None:
        defaults = KeyframeConfig()
        thumbnail = (defaults.thumbnail_width, defaults.thumbnail_height)
    blank = np.zeros((camera_size[1], camera_size[0], 3), np.uint8)
    geometry = preprocess_frame(blank, geometry_mode, dims.pixels.geometry_width)
    height, width = int(geometry.shape[1]), int(geometry.shape[2])
    processor = build_qwen_image_processor(dims.pixels)
    (qwen,) = frame_inputs([geometry], [0], processor)
    patches = int(qwen.pixel_values.shape[0])
    vision_tokens = patches // (MERGE * MERGE)
    kv_per_token = dims.layers * 2 * dims.kv_heads * dims.head_width * dims.dtype_bytes
    return FrameMemory(
        model_size=(width, height),
        vision_tokens=vision_tokens,
        rgb=height * width * 3,
        qwen_pixels=int(qwen.pixel_values.numel()) * qwen.pixel_values.element_size(),
        thumbnail=thumbnail[0] * thumbnail[1] * 4,
        patch_tokens=(height // PATCH) * (width // PATCH) * dims.backbone_width * dims.dtype_bytes,
        vision_cache=vision_tokens * dims.vision_width * dims.dtype_bytes,
        prefix_kv=(vision_tokens + FRAME_MARKER_TOKENS) * kv_per_token,
    )


def dims_of(models) -> ModelDims:
    """The dimensions of a loaded :class:`~spa3r_ros.models.bundle.SceneModels`."""
    text = models.vlm.qwen.config.text_config
    vision = models.vlm.qwen.config.vision_config
    head_width = getattr(text, 'head_dim', None) or text.hidden_size // text.num_attention_heads
    return ModelDims(
        name=models.model_id,
        pixels=models.pixels,
        backbone_width=models.spa3r.config.vggt.aggregator.embed_dim,
        vision_width=vision.out_hidden_size,
        layers=text.num_hidden_layers,
        kv_heads=text.num_key_value_heads,
        head_width=head_width,
        dtype_bytes=next(models.vlm.parameters()).element_size(),
    )


def official_dims(dtype_bytes: int = 2) -> ModelDims:
    """The official preset's dimensions, without its weights.

    The pixel budget is the registry's; the backbone is VGGT-1B's aggregator (the Spa3R
    official config); the language model is Qwen2.5-VL-3B-Instruct's ``config.json`` (36 layers,
    2 key/value heads of width 128, hidden and vision output width 2048).

    Args:
        dtype_bytes: 2 on a GPU (bf16 weights and caches), 4 on a CPU (fp32).
    """
    from spa3r_ros.configs.spa3r import spa3r_official_config
    from spa3r_ros.models.bundle import load_registry

    entry = load_registry()['official']
    return ModelDims(
        name='official',
        pixels=PixelBudgetConfig(**entry.get('pixels', {})),
        backbone_width=spa3r_official_config().vggt.aggregator.embed_dim,
        vision_width=2048,
        layers=36,
        kv_heads=2,
        head_width=128,
        dtype_bytes=dtype_bytes,
    )


def table(rows: list[tuple[ModelDims, tuple[int, int]]]) -> str:
    """A Markdown table of the memory per frame of each ``(dims, camera size)``.

    Sizes are in MiB, or KiB for a frame under 1 MiB in all (the tiny preset).
    """
    lines = [
        '| preset | camera | model input | vision tokens | unit | host: pixels + Qwen input + '
        'thumbnail | device: patch tokens + vision tokens + prefix KV | total |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for dims, camera in rows:
        memory = frame_memory(dims, camera)
        total = memory.host + memory.device
        unit, scale = ('MiB', 2**20) if total >= 2**20 else ('KiB', 2**10)

        def size(count: int, scale: int = scale) -> str:
            return f'{count / scale:.2f}'

        dtype = {2: 'bf16', 4: 'fp32'}.get(dims.dtype_bytes, f'{dims.dtype_bytes} B')
        lines.append(
            f'| {dims.name} ({dtype}) | {camera[0]}x{camera[1]} | '
            f'{memory.model_size[0]}x{memory.model_size[1]} | {memory.vision_tokens} | {unit} | '
            f'{size(memory.rgb)} + {size(memory.qwen_pixels)} + {size(memory.thumbnail)} = '
            f'{size(memory.host)} | {size(memory.patch_tokens)} + {size(memory.vision_cache)} + '
            f'{size(memory.prefix_kv)} = {size(memory.device)} | {size(total)} |'
        )
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the memory per scene frame of the tiny-random and official presets."""
    parser = argparse.ArgumentParser(
        prog='python -m spa3r_ros.scene.memory',
        description='Memory per scene frame (keyframe or current view), by part.',
    )
    parser.parse_args(argv)
    from spa3r_ros.models.bundle import build_tiny_random

    tiny = dims_of(build_tiny_random())
    rows = [(tiny, (640, 480))]
    for dtype_bytes in (2, 4):
        for camera in ((640, 480), (1920, 1080), (480, 640)):
            rows.append((official_dims(dtype_bytes), camera))
    sys.stdout.write(table(rows) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

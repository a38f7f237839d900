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

"""Frames for Spa3-VLM: which frames a question sees, and the Qwen-side pixels of each frame.

The reference feeds every frame twice (spa3r_spec.md sections 3.4 and 3.5): the geometry branch
gets VGGT's crop preprocessing (``[3, H, 518]`` in [0, 1]); Qwen's vision tower gets *that same
tensor* cropped at the top-left to an even number of 14-pixel patches (518 -> 504 columns, H down
by 14 when H/14 is odd), then Qwen's image processor with ``do_rescale=False``. Its resize bounds
are the :class:`~spa3r_ros.configs.vlm.PixelBudgetConfig` ones; with the reference's effective
12,544 / 451,584 a 504x392 frame keeps its size and gives 252 vision tokens.
"""

from collections.abc import Hashable, Sequence

import torch

from spa3r_ros.configs.vlm import FrameSamplingConfig, PixelBudgetConfig
from spa3r_ros.models.vlm.generation import FrameInput

PATCH = 14


def sample_frame_indices(num_frames: int, config: FrameSamplingConfig) -> list[int]:
    """Indices of the frames a question sees.

    ``'linspace'`` is the reference evaluation's sampler: all frames when there are at most
    ``max_num_frames``, else ``linspace(0, n - 1, k)`` truncated to int. ``'latest'`` keeps the
    newest ``k``.

    Args:
        num_frames: how many frames are available (oldest first).
        config: the sampling settings.

    Returns:
        Increasing indices into the frames.

    Raises:
        ValueError: if ``num_frames`` is negative.
    """
    if num_frames < 0:
        raise ValueError(f'num_frames must be >= 0, got {num_frames}')
    k = config.max_num_frames
    if num_frames <= k:
        return list(range(num_frames))
    if config.strategy == 'latest':
        return list(range(num_frames - k, num_frames))
    if k == 1:
        return [0]
    step = (num_frames - 1) / (k - 1)
    # int() truncates like numpy's astype(int) on the non-negative linspace values.
    return sorted({int(i * step) for i in range(k)})


# The shortest geometry-frame side qwen_crop keeps anything of: one merged token (2 x 14 px).
QWEN_MIN_SIDE_PX = 2 * PATCH


def qwen_crop(frame: torch.Tensor) -> torch.Tensor:
    """Top-left crop of a geometry frame to even patch counts (what Qwen's 2x2 merge needs).

    Args:
        frame: ``[3, H, W]`` in [0, 1] with H and W multiples of 14 (VGGT crop output).

    Returns:
        ``[3, H', W']`` with H' and W' multiples of 28.

    Raises:
        ValueError: if the frame is not ``[3, H, W]`` with sides multiples of 14 and at least
            :data:`QWEN_MIN_SIDE_PX`.
    """
    if frame.ndim != 3 or frame.shape[0] != 3:
        raise ValueError(f'frame must be [3, H, W], got {tuple(frame.shape)}')
    height, width = frame.shape[-2:]
    if height % PATCH or width % PATCH:
        raise ValueError(f'frame sides must be multiples of {PATCH}, got {height}x{width}')
    if min(height, width) < QWEN_MIN_SIDE_PX:
        raise ValueError(
            f'frame sides must be at least {QWEN_MIN_SIDE_PX} px, got {height}x{width}'
        )
    return frame[:, : height - height % (2 * PATCH), : width - width % (2 * PATCH)]


def build_qwen_image_processor(budget: PixelBudgetConfig):
    """Qwen's image processor with the configured pixel bounds, built in memory (no hub).

    The PIL backend is used (it needs no torchvision); rescaling is off because the frames are
    already in [0, 1].
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    return Qwen2VLImageProcessorPil(
        size={'shortest_edge': budget.min_pixels, 'longest_edge': budget.max_pixels},
        do_rescale=False,
    )


def frame_inputs(
    frames: Sequence[torch.Tensor], keys: Sequence[Hashable], processor
) -> list[FrameInput]:
    """Qwen-side inputs of geometry frames, one :class:`FrameInput` per frame.

    Args:
        frames: ``[3, H, W]`` tensors in [0, 1] (the geometry branch's frames).
        keys: a cache key per frame (stamps or sequence numbers).
        processor: from :func:`build_qwen_image_processor`.

    Returns:
        The frames' patchified pixels and grids.

    Raises:
        ValueError: if the counts differ.
    """
    if len(frames) != len(keys):
        raise ValueError(f'{len(frames)} frames but {len(keys)} keys')
    out = []
    for frame, key in zip(frames, keys):
        cropped = qwen_crop(frame).float().cpu()
        batch = processor(images=[cropped], return_tensors='pt', do_rescale=False)
        grid = tuple(int(v) for v in batch['image_grid_thw'][0])
        out.append(FrameInput(key, batch['pixel_values'], grid))
    return out

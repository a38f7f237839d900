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

"""Camera frames to VGGT's input contract: ``[S, 3, H, W]`` float RGB in [0, 1], W = 518.

This reproduces ``load_and_preprocess_images`` of facebookresearch/vggt
(``vggt/utils/load_fn.py``, also copied into Spa3R) for in-memory frames:

* ``mode='crop'`` (default): width -> 518, height -> ``round(h * 518 / w / 14) * 14`` (Python
  ``round``), PIL bicubic resize, then rows centre-cropped to 518 if taller (start
  ``(H - 518) // 2``). Landscape 4:3 gives 518 x 392; portrait gives 518 x 518.
* ``mode='pad'``: the longer side -> 518, the other ``round(... / 14) * 14``, bicubic, then padded
  to 518 x 518 with white (1.0), ``pad // 2`` before and the rest after.
* frames that end up with different sizes are each padded (white, centred) to the largest H and
  W of the set.

The resize works on the uint8 image through PIL, exactly like the reference that opens files with
PIL, so identical pixels give identical tensors.

Two shapes the reference would take are refused (:func:`check_frame_shape`), because no useful
input comes out of them: a frame so much wider than tall (``'crop'``; either way for ``'pad'``)
that its other side rounds to too few patches (none for VGGT, fewer than two for the Spa3-VLM's
merged tokens), and a frame more than :data:`MAX_ASPECT_RATIO` times
taller than wide, which ``'crop'`` would first resize to that many times 518 rows (a 1 x 4096
frame: two million rows, about 13 GB) only to keep 518 of them.
"""

from collections.abc import Sequence

import numpy as np
from PIL import Image
import torch
from torch import Tensor
import torch.nn.functional as F

TARGET_SIZE_PX = 518
PATCH_SIZE_PX = 14
MODES = ('crop', 'pad')
# Tallest frame taken, as height / width: 8 keeps the resize before the crop to 8 x 518 rows (a
# 4:1 phone panorama stands upright well within it).
MAX_ASPECT_RATIO = 8.0


def _resize(frame: np.ndarray, width: int, height: int) -> Tensor:
    img = Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0


def _pad_to(img: Tensor, height: int, width: int) -> Tensor:
    dh, dw = height - img.shape[1], width - img.shape[2]
    if dh <= 0 and dw <= 0:
        return img
    top, left = dh // 2, dw // 2
    return F.pad(img, (left, dw - left, top, dh - top), mode='constant', value=1.0)


def preprocess_frame(
    frame: np.ndarray,
    mode: str = 'crop',
    target_size: int = TARGET_SIZE_PX,
    patch_size: int = PATCH_SIZE_PX,
) -> Tensor:
    """Resize (and crop or pad) one frame.

    Args:
        frame: ``[h, w, 3]`` uint8 RGB.
        mode: ``'crop'`` or ``'pad'`` (see the module docstring).
        target_size: output width (crop) or side (pad) in pixels; a multiple of ``patch_size``.
        patch_size: the other side is rounded to a multiple of this.

    Returns:
        ``[3, H, W]`` float32 in [0, 1].

    Raises:
        ValueError: on a bad mode, dtype or shape.
    """
    if mode not in MODES:
        raise ValueError(f'mode {mode!r} is not one of {MODES}')
    if target_size % patch_size:
        raise ValueError(f'target_size {target_size} is not a multiple of {patch_size}')
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(f'expected a uint8 numpy array, got {getattr(frame, "dtype", frame)!r}')
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise ValueError(f'expected an RGB frame [h, w, 3], got shape {frame.shape}')
    h, w = frame.shape[:2]
    new_w, new_h = check_frame_shape(w, h, mode, target_size, patch_size)
    img = _resize(np.ascontiguousarray(frame), new_w, new_h)
    if mode == 'crop':
        if new_h > target_size:
            start = (new_h - target_size) // 2
            img = img[:, start : start + target_size]
        return img
    return _pad_to(img, target_size, target_size)


def resized_size(
    width: int,
    height: int,
    mode: str = 'crop',
    target_size: int = TARGET_SIZE_PX,
    patch_size: int = PATCH_SIZE_PX,
) -> tuple[int, int]:
    """``(width, height)`` a frame is resized to, before the crop or pad (the reference's rule).

    A side may come out 0 for extreme aspect ratios; :func:`check_frame_shape` refuses those.
    """
    if mode == 'crop' or width >= height:
        return target_size, round(height * (target_size / width) / patch_size) * patch_size
    return round(width * (target_size / height) / patch_size) * patch_size, target_size


def check_frame_shape(
    width: int,
    height: int,
    mode: str = 'crop',
    target_size: int = TARGET_SIZE_PX,
    patch_size: int = PATCH_SIZE_PX,
    min_side: int | None = None,
) -> tuple[int, int]:
    """The resized ``(width, height)`` of a frame, or why the models cannot take the frame.

    Callers that receive frames from outside (the scene engine, training data) check here before
    they keep a frame, so an unusable one is refused with this reason instead of failing later.

    Args:
        width: the frame's width in pixels.
        height: its height.
        mode: ``'crop'`` or ``'pad'``.
        target_size: see :func:`preprocess_frame`.
        patch_size: see :func:`preprocess_frame`.
        min_side: the shortest resized side the caller can use (default one patch, VGGT's
            least; the Spa3-VLM needs two, one merged Qwen token).

    Raises:
        ValueError: the frame is more than :data:`MAX_ASPECT_RATIO` times taller than wide, or
            so elongated that a resized side comes out under ``min_side``.
    """
    if mode not in MODES:
        raise ValueError(f'mode {mode!r} is not one of {MODES}')
    if width < 1 or height < 1:
        raise ValueError(f'a {width}x{height} frame has no pixels')
    if height > MAX_ASPECT_RATIO * width:
        raise ValueError(
            f'a {width}x{height} frame is more than {MAX_ASPECT_RATIO:g} times taller than wide'
        )
    min_side = patch_size if min_side is None else min_side
    new_w, new_h = resized_size(width, height, mode, target_size, patch_size)
    if min(new_w, new_h) < min_side:
        side, length = ('height', new_h) if new_h < new_w else ('width', new_w)
        raise ValueError(
            f'a {width}x{height} frame is too elongated for {mode} preprocessing at '
            f'{target_size} px: its {side} would be {length} px, under the {min_side} px needed'
        )
    return new_w, new_h


def preprocess_frames(
    frames: Sequence[np.ndarray],
    mode: str = 'crop',
    target_size: int = TARGET_SIZE_PX,
    patch_size: int = PATCH_SIZE_PX,
) -> Tensor:
    """Preprocess a set of frames into one VGGT input.

    Args:
        frames: ``S >= 1`` uint8 RGB arrays ``[h, w, 3]`` of any sizes.
        mode: ``'crop'`` or ``'pad'``.
        target_size: see :func:`preprocess_frame`.
        patch_size: see :func:`preprocess_frame`.

    Returns:
        ``[S, 3, H, W]`` float32 in [0, 1]; frames of different resulting sizes are padded with
        white, centred, to the largest H and W.

    Raises:
        ValueError: if ``frames`` is empty or a frame is invalid.
    """
    if len(frames) == 0:
        raise ValueError('preprocess_frames needs at least one frame')
    return stack_frames([preprocess_frame(f, mode, target_size, patch_size) for f in frames])


def stack_frames(images: Sequence[Tensor]) -> Tensor:
    """Stack preprocessed frames, padding each (white, centred) to the largest H and W.

    This is the last step of :func:`preprocess_frames`, for callers that cache the per-frame
    output of :func:`preprocess_frame` (the scene engine): the result is the same tensor.

    Args:
        images: ``S >= 1`` tensors ``[3, H_i, W_i]``.

    Returns:
        ``[S, 3, H, W]`` with ``H = max H_i`` and ``W = max W_i``.

    Raises:
        ValueError: if ``images`` is empty.
    """
    if len(images) == 0:
        raise ValueError('stack_frames needs at least one frame')
    max_h = max(img.shape[1] for img in images)
    max_w = max(img.shape[2] for img in images)
    return torch.stack([_pad_to(img, max_h, max_w) for img in images])

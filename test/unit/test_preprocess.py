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

"""Frame preprocessing to VGGT's input contract (crop/pad rules of load_and_preprocess_images)."""

import numpy as np
import pytest
import torch

from spa3r_ros.models.preprocess import check_frame_shape, preprocess_frame, preprocess_frames


def _frame(h, w, value=None):
    rng = np.random.default_rng(h * 1000 + w)
    if value is not None:
        return np.full((h, w, 3), value, dtype=np.uint8)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ('hw', 'expected'),
    [
        ((480, 640), (392, 518)),
        ((1440, 1920), (392, 518)),
        ((640, 480), (518, 518)),
        ((100, 518), (98, 518)),
    ],
)
def test_crop_mode_sizes(hw, expected):
    img = preprocess_frame(_frame(*hw))
    assert img.shape == (3, *expected) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0


def test_constant_frame_stays_constant_and_scaled():
    img = preprocess_frame(_frame(60, 80, value=51))
    torch.testing.assert_close(img, torch.full_like(img, 51 / 255))


def test_pad_mode_white_border():
    img = preprocess_frame(_frame(300, 100, value=0), mode='pad')
    assert img.shape == (3, 518, 518)
    # Portrait: height -> 518, width round(100 * 518 / 300 / 14) * 14 = 168; 175 white each side.
    assert torch.all(img[:, :, :175] == 1.0) and torch.all(img[:, :, -175:] == 1.0)
    assert torch.all(img[:, :, 175:-175] == 0.0)


def test_mixed_sizes_are_padded_white_and_centred():
    batch = preprocess_frames([_frame(480, 640, value=0), _frame(640, 480, value=0)])
    assert batch.shape == (2, 3, 518, 518)
    # The landscape frame (392 rows) gets 63 white rows above and below.
    assert torch.all(batch[0, :, :63] == 1.0) and torch.all(batch[0, :, -63:] == 1.0)
    assert torch.all(batch[0, :, 63:-63] == 0.0)
    assert torch.all(batch[1] == 0.0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match='uint8'):
        preprocess_frame(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r'\[h, w, 3\]'):
        preprocess_frame(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match='mode'):
        preprocess_frame(_frame(10, 10), mode='stretch')
    with pytest.raises(ValueError, match='at least one frame'):
        preprocess_frames([])


# At a 56-px target (tiny-random's geometry width) a frame's height rounds to one 14-px patch
# down to 9 rows per 64 columns; Python's round(0.5) is 0, so 9 rows per 72 columns is too wide.
@pytest.mark.parametrize(
    ('width', 'height', 'mode', 'resized'),
    [
        (64, 9, 'crop', (56, 14)),
        (10, 80, 'crop', (56, 448)),  # 8 times taller than wide: the most taken
        (64, 9, 'pad', (56, 14)),
        (9, 64, 'pad', (14, 56)),
        (640, 480, 'crop', (56, 42)),
    ],
)
def test_check_frame_shape_gives_the_resize_of_preprocess_frame(width, height, mode, resized):
    assert check_frame_shape(width, height, mode, 56) == resized
    out = preprocess_frame(_frame(height, width), mode, 56)
    expected = (min(resized[1], 56), 56) if mode == 'crop' else (56, 56)
    assert tuple(out.shape[1:]) == expected


@pytest.mark.parametrize(
    ('width', 'height', 'mode', 'reason'),
    [
        (72, 9, 'crop', 'its height would be 0 px, under the 14 px needed'),
        (4096, 1, 'crop', 'its height would be 0 px'),
        (72, 9, 'pad', 'its height would be 0 px'),
        (9, 72, 'pad', 'its width would be 0 px'),
        (10, 81, 'crop', 'more than 8 times taller than wide'),
        (1, 4096, 'crop', 'more than 8 times taller than wide'),
        (1, 4096, 'pad', 'more than 8 times taller than wide'),
    ],
)
def test_frames_the_models_cannot_take_are_refused_with_the_reason(width, height, mode, reason):
    with pytest.raises(ValueError, match=reason):
        check_frame_shape(width, height, mode, 56)
    # preprocess_frame refuses them the same way, before resizing anything.
    with pytest.raises(ValueError, match=reason):
        preprocess_frame(_frame(height, width), mode, 56)


def test_the_default_target_takes_a_4_to_1_panorama_either_way_up():
    assert check_frame_shape(4000, 1000) == (518, 126)
    assert check_frame_shape(1000, 4000) == (518, 2072)  # cropped to 518 rows afterwards
    with pytest.raises(ValueError, match='height would be 0 px'):
        check_frame_shape(518 * 2, 13)


def test_a_caller_may_ask_for_a_longer_shortest_side():
    # The Spa3-VLM needs two patches (one merged Qwen token): 64x9 is one patch high at 56 px.
    with pytest.raises(ValueError, match='its height would be 14 px, under the 28 px needed'):
        check_frame_shape(64, 9, 'crop', 56, min_side=28)
    assert check_frame_shape(64, 24, 'crop', 56, min_side=28) == (56, 28)

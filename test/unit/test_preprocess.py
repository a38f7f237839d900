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

from spa3r_ros.models.preprocess import preprocess_frame, preprocess_frames


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

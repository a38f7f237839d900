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

"""Frame sampling and the Qwen side of frame preprocessing (token counts of the reference)."""

import pytest
import torch

from spa3r_ros.configs.vlm import FrameSamplingConfig, PixelBudgetConfig
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.models.vlm.preprocess import (
    build_qwen_image_processor,
    frame_inputs,
    qwen_crop,
    sample_frame_indices,
)


def test_linspace_sampling_matches_reference():
    config = FrameSamplingConfig(max_num_frames=4)
    assert sample_frame_indices(3, config) == [0, 1, 2]  # fewer than k: all of them
    # linspace(0, 9, 4) = [0, 3, 6, 9]; linspace(0, 10, 4) = [0, 3.33, 6.67, 10] -> [0, 3, 6, 10]
    assert sample_frame_indices(10, config) == [0, 3, 6, 9]
    assert sample_frame_indices(11, config) == [0, 3, 6, 10]
    assert sample_frame_indices(5, FrameSamplingConfig(max_num_frames=1)) == [0]
    assert len(sample_frame_indices(1000, FrameSamplingConfig())) == 32  # reference eval default


def test_latest_sampling_and_errors():
    config = FrameSamplingConfig(max_num_frames=3, strategy='latest')
    assert sample_frame_indices(10, config) == [7, 8, 9]
    with pytest.raises(ValueError, match='num_frames'):
        sample_frame_indices(-1, config)
    with pytest.raises(ConfigError, match='strategy'):
        FrameSamplingConfig(strategy='random')


def test_qwen_crop_even_patches():
    assert qwen_crop(torch.zeros(3, 392, 518)).shape == (3, 392, 504)
    assert qwen_crop(torch.zeros(3, 518, 518)).shape == (3, 504, 504)
    with pytest.raises(ValueError, match='multiples of 14'):
        qwen_crop(torch.zeros(3, 390, 518))


@pytest.mark.parametrize(
    ('budget', 'grid'),
    [
        (PixelBudgetConfig(), (1, 28, 36)),  # reference's effective bounds: 252 tokens
        (PixelBudgetConfig(min_pixels=200704, max_pixels=1605632), (1, 30, 38)),  # 285 tokens
    ],
)
def test_token_counts_of_a_518x392_frame(budget, grid):
    processor = build_qwen_image_processor(budget)
    (frame,) = frame_inputs([torch.rand(3, 392, 518)], ['f0'], processor)
    assert frame.grid_thw == grid
    assert frame.pixel_values.shape == (grid[1] * grid[2], 3 * 2 * 14 * 14)


def test_pixel_budget_validation():
    with pytest.raises(ConfigError, match='min_pixels'):
        PixelBudgetConfig(min_pixels=500000, max_pixels=400000)
    with pytest.raises(ConfigError, match='multiple of 14'):
        PixelBudgetConfig(geometry_width=500)

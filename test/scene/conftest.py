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

"""Scene-tier fixtures: one torch thread, the tiny-random bundle and camera frames."""

import numpy as np
import pytest
import torch

from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.models.bundle import build_tiny_random


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run tiny models on one thread (on a shared 2-core machine a pool only adds contention)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def tiny_models():
    """The tiny-random bundle (seed 0), shared: the engine never changes the weights."""
    return build_tiny_random(seed=0)


def random_image(seed: int, height: int = 48, width: int = 64) -> DecodedImage:
    """A noise image; different seeds give frames the keyframe policy finds novel."""
    rng = np.random.default_rng(seed)
    return DecodedImage('color', rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture()
def image_for():
    """``image_for(seed)`` -> a random colour :class:`DecodedImage`."""
    return random_image

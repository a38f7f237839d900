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

"""Scene-tier fixtures: camera frames (one torch thread and the tiny bundle: test/conftest.py)."""

import numpy as np
import pytest

from spa3r_ros.core.image_decode import DecodedImage


def random_image(seed: int, height: int = 48, width: int = 64) -> DecodedImage:
    """A noise image; different seeds give frames the keyframe policy finds novel."""
    rng = np.random.default_rng(seed)
    return DecodedImage('color', rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture()
def image_for():
    """``image_for(seed)`` -> a random colour :class:`DecodedImage`."""
    return random_image

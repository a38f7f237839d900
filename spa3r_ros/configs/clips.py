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

"""Configuration of the training clips: how multi-view clips are sampled from recorded frames.

The clip sampler of :mod:`spa3r_ros.training.data` reads it. The defaults are the reference's
(spa3r_spec.md 2.7): per batch a view count drawn from ``[views_min, views_max]``, as many clips as
fit ``images_per_batch`` images, consecutive views ``frame_interval_min .. frame_interval_max``
recorded frames apart.

Added for the streaming sampler (not in the reference, which reads one clip per scene per epoch
from image folders): ``frames_per_clip`` sets how many clips a long recording gives per epoch, and
``max_redraws`` how often a clip that hit a corrupt message is drawn again.
"""

from dataclasses import dataclass

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.core.errors import ConfigError


@dataclass(frozen=True)
class ClipDataConfig:
    """How training clips are drawn from a list of recordings.

    Args:
        views_min: fewest views of a clip (drawn per batch).
        views_max: most views of a clip (drawn per batch).
        images_per_batch: images per micro-batch; a batch holds ``max(1, images_per_batch // n)``
            clips of ``n`` views.
        frame_interval_min: fewest recorded frames between consecutive views of a clip.
        frame_interval_max: most recorded frames between consecutive views of a clip.
        num_workers: data-loader worker processes per rank (0: load in the training process).
        seed: seed of the clip sampling (with the epoch, it fixes every batch).
        frames_per_clip: a recording of ``N`` camera frames gives ``max(1, N // frames_per_clip)``
            clips per epoch, each starting in its own stretch of the recording; 0 gives one clip
            per recording per epoch (the reference's one item per scene).
        max_redraws: a clip that meets a corrupt message is drawn again (new frames of the same
            recording, deterministically) up to this many times, then dropped from its batch.
    """

    views_min: int = param(4, description='Fewest views of a clip', bounds=(1, 64))
    views_max: int = param(12, description='Most views of a clip', bounds=(1, 64))
    images_per_batch: int = param(
        24, description='Images per micro-batch (clips x views)', bounds=(1, 4096)
    )
    frame_interval_min: int = param(
        2, description='Fewest recorded frames between consecutive views', bounds=(1, 10000)
    )
    frame_interval_max: int = param(
        6, description='Most recorded frames between consecutive views', bounds=(1, 10000)
    )
    num_workers: int = param(0, description='Data-loader workers per rank', bounds=(0, 64))
    seed: int = param(0, description='Seed of the clip sampling', bounds=(0, 2**31 - 1))
    frames_per_clip: int = param(
        32,
        description='Recorded frames per clip per epoch (0: one clip per recording)',
        bounds=(0, 10**9),
    )
    max_redraws: int = param(
        4, description='Redraws of a clip that met a corrupt message', bounds=(0, 100)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.views_min > self.views_max:
            raise ConfigError(
                f'ClipDataConfig: views_min {self.views_min} > views_max {self.views_max}'
            )
        if self.frame_interval_min > self.frame_interval_max:
            raise ConfigError(
                f'ClipDataConfig: frame_interval_min {self.frame_interval_min} > '
                f'frame_interval_max {self.frame_interval_max}'
            )

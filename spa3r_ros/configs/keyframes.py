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

"""Configuration of the keyframe policy: how many keyframes are kept, what makes a frame new.

:class:`~spa3r_ros.scene.keyframes.KeyframePolicy` reads it; it lives here, with the other
configurations, because configs are the ground floor of the package (they import nothing of it but
configs and the exception hierarchy). Like every config here it imports no torch.
"""

from dataclasses import dataclass, replace

from spa3r_ros.configs.fields import check_fields, param

# The keyframe window's range (a model bundle's recorded window is checked against it too).
WINDOW_BOUNDS = (1, 256)
# ``window = WINDOW_FROM_MODEL`` (the default) keeps as many keyframes as the model was trained
# with: its bundle's ``keyframe_window``, or DEFAULT_WINDOW when the bundle records none (the
# official checkpoints). A ROS parameter cannot tell "not set" from a value, hence the 0.
WINDOW_FROM_MODEL = 0
DEFAULT_WINDOW = 16


@dataclass(frozen=True)
class KeyframeConfig:
    """How keyframes are chosen and how many are kept.

    Args:
        window: most keyframes kept (the frames the scene latent is built from);
            :data:`WINDOW_FROM_MODEL` (0): the window the model was trained with (see
            :meth:`with_window_of`).
        novelty_threshold: image distance (``1 - correlation`` of the thumbnails) from every
            keyframe at which a frame counts as new.
        min_translation_m: camera travel from every same-camera keyframe at which a frame counts
            as new (needs odometry).
        min_rotation_deg: camera rotation from every same-camera keyframe at which a frame
            counts as new (needs odometry).
        refresh_sec: a frame that is not new replaces its nearest keyframe when that keyframe is
            at least this much older, so a static camera's scene stays current; 0 disables.
        pose_max_gap_sec: longest gap between two odometry poses across which the pose at a
            frame's stamp is interpolated (``PoseTrack.at``); beyond it the frame has no pose.
        thumbnail_width: width of the grey thumbnail compared between frames.
        thumbnail_height: height of the grey thumbnail compared between frames.
    """

    window: int = param(
        WINDOW_FROM_MODEL,
        description='Most keyframes kept for the scene latent (0: as many as the model was '
        f'trained with, or {DEFAULT_WINDOW} when its bundle does not say)',
        bounds=(WINDOW_FROM_MODEL, WINDOW_BOUNDS[1]),
    )
    novelty_threshold: float = param(
        0.2,
        description='Image distance (1 - thumbnail correlation) from every keyframe that makes '
        'a frame new',
        bounds=(0.001, 2.0),
    )
    min_translation_m: float = param(
        0.5,
        description='Camera travel from every same-camera keyframe that makes a frame new',
        bounds=(0.001, 1000.0),
        unit='m',
    )
    min_rotation_deg: float = param(
        20.0,
        description='Camera rotation from every same-camera keyframe that makes a frame new',
        bounds=(0.01, 180.0),
        unit='deg',
    )
    refresh_sec: float = param(
        10.0,
        description='A frame that is not new replaces its nearest keyframe when that keyframe is '
        'this much older (0: never)',
        bounds=(0.0, 86400.0),
        unit='s',
    )
    pose_max_gap_sec: float = param(
        0.5,
        description='Longest gap between odometry poses across which a frame pose is interpolated',
        bounds=(0.001, 60.0),
        unit='s',
    )
    thumbnail_width: int = param(
        32,
        description='Width of the grey thumbnail compared between frames',
        bounds=(4, 256),
        read_only=True,
        unit='px',
    )
    thumbnail_height: int = param(
        24,
        description='Height of the grey thumbnail compared between frames',
        bounds=(4, 256),
        read_only=True,
        unit='px',
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def with_window_of(self, trained_window: int | None) -> 'KeyframeConfig':
        """This config with a window of :data:`WINDOW_FROM_MODEL` made concrete.

        Args:
            trained_window: the model's ``keyframe_window`` (None: not recorded, which gives
                :data:`DEFAULT_WINDOW`).
        """
        if self.window != WINDOW_FROM_MODEL:
            return self
        return replace(self, window=trained_window or DEFAULT_WINDOW)

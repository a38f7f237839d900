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

"""Configuration of the scene engine: ingestion, keyframes, scene updates and answer decoding.

The model itself (preset, device, pixel budgets) is fixed by the
:class:`~spa3r_ros.models.bundle.SceneModels` the engine is given; these fields are what an
integrator tunes for a robot: how many frames may wait, how often the scene is rebuilt and how the
answers are decoded. Like every config here it imports no torch.
"""

from dataclasses import dataclass

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.keyframes import KeyframeConfig

# Largest camera frame taken by default, per side (px): above every common camera (4K UHD is
# 3840 x 2160, a 12 MP phone photo 4000 x 3000), while a 16000 x 16000 frame (768 MB decoded) is
# refused before it is decoded.
DEFAULT_MAX_FRAME_WIDTH = 4096
DEFAULT_MAX_FRAME_HEIGHT = 4096
# Bounds of the two limits: below 64 px there is nothing for the models to see; above 16384 px a
# single decoded frame alone would need 805 MB.
FRAME_SIDE_BOUNDS = (64, 16384)
# How numeric answers are decoded (``SceneConfig.numeric_decoding``).
NUMERIC_DECODINGS = ('greedy', 'expected_mra')


@dataclass(frozen=True)
class SceneConfig:
    """How the scene engine ingests frames and keeps its scene current.

    Args:
        ingest_queue_size: frames that may wait for the keyframe policy; when the queue is full the
            oldest waiting frame is dropped and counted (``frames_dropped``).
        min_update_interval_sec: at most one scene update per this many seconds (a burst of new
            keyframes costs one update, not one per keyframe); ``flush`` ignores it.
        geometry_mode: VGGT preprocessing of the geometry branch, ``'crop'`` (the reference's) or
            ``'pad'``.
        max_poses: odometry poses kept for looking up the pose of a frame.
        post_prompts: ``'lmms_eval'`` appends the benchmark's answer-format instruction to every
            question (what the model was evaluated with); ``'none'`` sends the bare question.
        constrain_answers: restrict decoding to a number or an option letter for the numeric and
            multiple-choice task families, so a small model's answer always parses.
        max_number_tokens: longest numeric answer (tokens) under the number constraint.
        numeric_decoding: how a numeric family's answer is chosen (with ``constrain_answers``):
            ``'greedy'`` (VSI-Bench's protocol: one digit at a time) or ``'expected_mra'`` (the
            number with the highest expected MRA under the model's distribution over whole
            answers; see ``Spa3VLMGenerator.expected_mra_number``).
        number_beams: unfinished answers kept per step of the ``expected_mra`` search.
        max_frame_width: frames wider than this are dropped before decoding where the format
            allows (raw images, JPEG and PNG headers) and counted (``frames_too_large``).
        max_frame_height: the same for the height.
        keyframes: the keyframe policy (window, novelty and motion thresholds).
    """

    ingest_queue_size: int = param(
        64,
        description='Frames that may wait for the keyframe policy before the oldest is dropped',
        bounds=(1, 4096),
        read_only=True,
    )
    min_update_interval_sec: float = param(
        0.5,
        description='Shortest time between two scene updates',
        bounds=(0.0, 3600.0),
        unit='s',
    )
    geometry_mode: str = param(
        'crop',
        description='Geometry-branch preprocessing: crop (reference) or pad',
        choices=('crop', 'pad'),
        read_only=True,
    )
    max_poses: int = param(
        1000,
        description='Odometry poses kept for frame lookups',
        bounds=(2, 100000),
        read_only=True,
    )
    post_prompts: str = param(
        'lmms_eval',
        description='Answer-format instructions: lmms_eval (reference) or none',
        choices=('lmms_eval', 'none'),
    )
    constrain_answers: bool = param(
        True, description='Restrict numeric and multiple-choice answers to numbers and letters'
    )
    max_number_tokens: int = param(
        8, description='Longest numeric answer under the number constraint', bounds=(1, 64)
    )
    numeric_decoding: str = param(
        'greedy',
        description='Numeric answers: greedy (VSI-Bench) or expected_mra (best expected score)',
        choices=NUMERIC_DECODINGS,
    )
    number_beams: int = param(
        16,
        description='Unfinished answers kept per step of the expected_mra search',
        bounds=(1, 256),
    )
    max_frame_width: int = param(
        DEFAULT_MAX_FRAME_WIDTH,
        description='Widest camera frame taken; wider frames are dropped and counted',
        bounds=FRAME_SIDE_BOUNDS,
        unit='px',
    )
    max_frame_height: int = param(
        DEFAULT_MAX_FRAME_HEIGHT,
        description='Tallest camera frame taken; taller frames are dropped and counted',
        bounds=FRAME_SIDE_BOUNDS,
        unit='px',
    )
    keyframes: KeyframeConfig = param(
        default_factory=KeyframeConfig, description='Keyframe policy'
    )

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def max_frame_size(self) -> tuple[int, int]:
        """``(max_frame_width, max_frame_height)``, as the image decoders take it."""
        return (self.max_frame_width, self.max_frame_height)

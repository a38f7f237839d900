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

"""Configuration of the Spa3-VLM fine-tuning samples (:mod:`spa3r_ros.training.vlm_data`).

A sample is one question of a QA file with the frames the scene engine holds at the question's
time. The keyframe policy runs with the node's thresholds and a window of
``frames_per_sample - 1`` keyframes, so a sample has at most ``frames_per_sample`` frames (the
window plus the current view), as a node run with ``keyframes.window = frames_per_sample - 1``
would hold. The reference trained with up to 8 frames. Like every config here it imports no torch.
"""

from dataclasses import dataclass, replace

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.keyframes import KeyframeConfig
from spa3r_ros.configs.scene import SceneConfig

#: The answer-format instruction styles (``SceneConfig.post_prompts``).
POST_PROMPT_MODES = ('lmms_eval', 'none')


@dataclass(frozen=True)
class VlmDataConfig:
    """How fine-tuning samples are built, batched and cached.

    Args:
        frames_per_sample: most frames of a sample (keyframe window + the current view).
        batch_size: samples per micro-batch on each rank (1 keeps every sample exactly what the
            node sees; see the collate's padding rule for more).
        num_workers: data-loader worker processes per rank (0: load in the training process).
        seed: seed of the per-epoch shuffle.
        family_balance: how far an epoch evens out question families. 0: every question once
            per epoch, shuffled (families as frequent as in the data). b > 0: an epoch is as
            many draws, with replacement, each question drawn with probability proportional to
            ``n_f ** -b`` (``n_f``: questions of its family), so families weigh ``n_f ** (1 - b)``:
            1 makes all families equally frequent, 0.5 weighs them by the square root of their
            size. Synthetic scenes give one room-size question per scene but ten camera-distance
            ones, while the evaluation averages over families.
        cache_dir: folder of the frozen-branch cache (vision tokens and Spa3R latents); '' = none.
        use_odometry: give the keyframe policy the bag's odometry (as the node does when the bag
            has it).
        geometry_mode: VGGT preprocessing of the geometry branch (``crop``, the node's default,
            or ``pad``), as ``SceneConfig.geometry_mode``.
        post_prompts: ``lmms_eval`` (the node's default) or ``none``, as
            ``SceneConfig.post_prompts``.
        novelty_threshold: the keyframe policy's image novelty threshold (node default).
        min_translation_m: the keyframe policy's travel threshold (node default).
        min_rotation_deg: the keyframe policy's rotation threshold (node default).
        refresh_sec: the keyframe policy's refresh age (node default).
        gasp: attach depth, intrinsics and camera poses per image when the bag has depth and
            odometry (the GASP targets).
    """

    frames_per_sample: int = param(
        8, description='Most frames per sample (keyframe window + current view)', bounds=(2, 257)
    )
    batch_size: int = param(1, description='Samples per micro-batch per rank', bounds=(1, 1024))
    num_workers: int = param(0, description='Data-loader workers per rank', bounds=(0, 64))
    seed: int = param(0, description='Seed of the per-epoch shuffle', bounds=(0, 2**31 - 1))
    family_balance: float = param(
        0.0,
        description='Evening-out of question families per epoch (0: none, 1: equal)',
        bounds=(0.0, 1.0),
    )
    cache_dir: str = param('', description="Frozen-branch feature cache folder ('' = none)")
    use_odometry: bool = param(True, description='Give the keyframe policy the odometry')
    geometry_mode: str = param(
        'crop', description='Geometry-branch preprocessing', choices=('crop', 'pad')
    )
    post_prompts: str = param(
        'lmms_eval', description='Answer-format instructions', choices=POST_PROMPT_MODES
    )
    novelty_threshold: float = param(
        KeyframeConfig.novelty_threshold,
        description='Keyframe image novelty threshold',
        bounds=(0.001, 2.0),
    )
    min_translation_m: float = param(
        KeyframeConfig.min_translation_m,
        description='Keyframe travel threshold',
        bounds=(0.001, 1000.0),
        unit='m',
    )
    min_rotation_deg: float = param(
        KeyframeConfig.min_rotation_deg,
        description='Keyframe rotation threshold',
        bounds=(0.01, 180.0),
        unit='deg',
    )
    refresh_sec: float = param(
        KeyframeConfig.refresh_sec,
        description='Keyframe refresh age (0: never)',
        bounds=(0.0, 86400.0),
        unit='s',
    )
    gasp: bool = param(True, description='Attach GASP depth and pose targets when available')

    def __post_init__(self) -> None:
        check_fields(self)

    def keyframe_config(self) -> KeyframeConfig:
        """The keyframe policy's settings: the node's, with ``frames_per_sample - 1`` keyframes."""
        return replace(
            KeyframeConfig(),
            window=self.frames_per_sample - 1,
            novelty_threshold=self.novelty_threshold,
            min_translation_m=self.min_translation_m,
            min_rotation_deg=self.min_rotation_deg,
            refresh_sec=self.refresh_sec,
        )

    def scene_config(self) -> SceneConfig:
        """The :class:`SceneConfig` of a node that would hold the same frames as the samples."""
        return replace(
            SceneConfig(),
            geometry_mode=self.geometry_mode,
            post_prompts=self.post_prompts,
            keyframes=self.keyframe_config(),
        )

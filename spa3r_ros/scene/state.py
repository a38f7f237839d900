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

"""The immutable results of the scene engine: a scene version and the engine's counters.

A :class:`SceneState` is built completely by the update worker and then published by swapping one
reference, so a question holding a state never sees a half-built scene. Nothing in it is changed
afterwards (its tensors are not written to; its tuples are tuples).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from spa3r_ros.core.types import SceneStatusReport
from spa3r_ros.models.vlm.generation import FrameInput


@dataclass(frozen=True)
class KeyframeInput:
    """What the engine keeps per scene frame: everything that does not depend on the other frames.

    Only model-resolution data is kept here, never the camera's full-resolution pixels: a frame of
    any size costs the same here (see :mod:`spa3r_ros.scene.memory` for the bytes per frame). The
    engine itself holds those pixels for the newest frame seen (the current view, prepared by
    the scene update) until a newer frame replaces it, and for frames in its ingest queue.

    Attributes:
        seq: the frame's arrival number (the key of every per-keyframe cache).
        stamp: capture time in seconds.
        camera: topic or ``frame_id`` it came from.
        rgb: ``[H, W, 3]`` uint8, the frame at the geometry branch's input resolution (VGGT's
            resize and crop or pad, e.g. 392 x 518): exactly the geometry tensor times 255, so it
            is what a saved scene stores and what the recompute baseline starts from.
        frame_input: the Qwen-side patchified pixels of the frame (cache key ``seq``).
    """

    seq: int
    stamp: float
    camera: str
    rgb: np.ndarray
    frame_input: FrameInput

    @property
    def geometry(self) -> torch.Tensor:
        """``[3, H, W]`` float32 in [0, 1]: the geometry branch's preprocessed frame."""
        return torch.from_numpy(self.rgb).permute(2, 0, 1).float().div_(255.0)


@dataclass(frozen=True)
class SceneState:
    """One version of the scene: what every question about it is answered from.

    Its frames are the keyframe window plus the *current view*: the newest frame the engine had
    seen when the update started, whether or not the keyframe policy kept it (when it is a
    keyframe it is not repeated). So ``newest_stamp`` is the stamp of the newest frame seen, what
    ``min_stamp`` waits for and what answers report as ``scene_stamp``.

    Attributes:
        version: increases by one with every update (0 is never used: it means "no scene").
        latents: ``[1, Q, D]`` Spa3R scene latent, on the models' device.
        keyframes: the per-frame inputs (model-resolution pixels, Qwen inputs) of every frame of
            the scene, the current view included, ordered by stamp; the ``keyframe_*``,
            ``frame_inputs`` and ``newest_stamp`` properties are read from them.
        created_at: ``time.time()`` when the state was published.
        update_sec: how long the update that built it took (seconds).
        seen_stamp: newest stamp of any frame the keyframe policy had considered when this state
            was current (it can run ahead of ``newest_stamp`` while the next update is pending).
        current_view_is_keyframe: whether the newest frame is one of the keyframes (False: it
            was added to the window as the current view).
    """

    version: int
    latents: torch.Tensor
    keyframes: tuple[KeyframeInput, ...]
    created_at: float
    update_sec: float
    seen_stamp: float = 0.0
    current_view_is_keyframe: bool = True

    @property
    def keyframe_seqs(self) -> tuple[int, ...]:
        """Arrival numbers of the keyframes, ordered by stamp."""
        return tuple(k.seq for k in self.keyframes)

    @property
    def keyframe_stamps(self) -> tuple[float, ...]:
        """Capture times of the keyframes (seconds), same order."""
        return tuple(k.stamp for k in self.keyframes)

    @property
    def frame_inputs(self) -> tuple[FrameInput, ...]:
        """The Qwen-side input of each keyframe, same order (prompt order)."""
        return tuple(k.frame_input for k in self.keyframes)

    @property
    def newest_stamp(self) -> float:
        """The current view's stamp, the newest in the scene (``SpatialAnswer.scene_stamp``)."""
        return max((k.stamp for k in self.keyframes), default=0.0)

    @property
    def current_view(self) -> KeyframeInput:
        """The newest frame of the scene (what the camera saw last when it was built)."""
        return max(self.keyframes, key=lambda k: (k.stamp, k.seq))

    @property
    def num_frames(self) -> int:
        """How many frames the scene holds (the keyframes and the current view)."""
        return len(self.keyframes)


@dataclass(frozen=True)
class EngineStats(SceneStatusReport):
    """The scene engine's health at one instant (``SceneStatus`` and ``/diagnostics``).

    Accounting: ``frames_received == frames_dropped + frames_seen + frames_buffered`` always holds;
    ``frames_dropped`` is the sum of its reasons: ``frames_bad + frames_too_large +
    frames_overflow + frames_cleared``.

    Attributes:
        frames_received: frames offered to the engine (decodable or not).
        frames_dropped: frames lost before the keyframe policy saw them.
        frames_buffered: frames waiting for the keyframe policy (queued or being considered).
        keyframes: keyframes held now.
        scene_version: version of the current scene (0 = none).
        scene_stamp: newest keyframe stamp of the current scene (seconds).
        scene_age_sec: time since the current scene was published (0 without a scene).
        last_update_latency_sec: duration of the last scene update.
        last_query_latency_sec: latency of the last finished question.
        device: where the models run (``'cpu'``, ``'cuda:0'``; ``''`` without models).
        memory_bytes: CUDA memory allocated on a GPU device, else the process's resident memory.
        model_id: the models' preset name or checkpoint path.
        ready: whether a question would be answered from a scene now.
        frames_seen: frames the keyframe policy has considered.
        frames_bad: frames that could not be decoded (part of ``frames_dropped``).
        frames_overflow: frames dropped because the ingest queue was full (part of
            ``frames_dropped``).
        resets: how many times the scene was reset.
        frames_too_large: frames dropped because they exceed ``scene.max_frame_width`` /
            ``max_frame_height`` (part of ``frames_dropped``).
        frames_cleared: queued frames discarded by a reset or a loaded scene (part of
            ``frames_dropped``).
    """

    # The SceneStatus fields come from SceneStatusReport; the engine's own counters follow.
    frames_seen: int = 0
    frames_bad: int = 0
    frames_overflow: int = 0
    resets: int = 0
    frames_too_large: int = 0
    frames_cleared: int = 0

    def drop_reasons(self) -> dict[str, int]:
        """``frames_dropped`` by reason: ``bad``, ``too_large``, ``overflow``, ``cleared``."""
        return {
            'bad': self.frames_bad,
            'too_large': self.frames_too_large,
            'overflow': self.frames_overflow,
            'cleared': self.frames_cleared,
        }

    def is_consistent(self) -> bool:
        """Whether every received frame is accounted for exactly once, and every drop by reason."""
        dropped = self.frames_dropped == sum(self.drop_reasons().values())
        return dropped and (
            self.frames_received == self.frames_dropped + self.frames_seen + self.frames_buffered
        )

    def status_report(self) -> SceneStatusReport:
        """The fields of ``msg/SceneStatus.msg``."""
        return SceneStatusReport(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(SceneStatusReport)}
        )

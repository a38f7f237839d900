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
    """What the engine keeps per keyframe: everything that does not depend on the other frames.

    Attributes:
        seq: the frame's arrival number (the key of every per-keyframe cache).
        stamp: capture time in seconds.
        camera: topic or ``frame_id`` it came from.
        rgb: ``[h, w, 3]`` uint8 pixels as received (for save/load and the recompute baseline).
        geometry: ``[3, H, W]`` float32 in [0, 1], the geometry branch's preprocessed frame.
        frame_input: the Qwen-side patchified pixels of the frame (cache key ``seq``).
    """

    seq: int
    stamp: float
    camera: str
    rgb: np.ndarray
    geometry: torch.Tensor
    frame_input: FrameInput


@dataclass(frozen=True)
class SceneState:
    """One version of the scene: what every question about it is answered from.

    Attributes:
        version: increases by one with every update (0 is never used: it means "no scene").
        latents: ``[1, Q, D]`` Spa3R scene latent, on the models' device.
        keyframes: the per-keyframe inputs (pixels, geometry tensors), ordered by stamp; the
            ``keyframe_*``, ``frame_inputs`` and ``newest_stamp`` properties are read from them.
        created_at: ``time.time()`` when the state was published.
        update_sec: how long the update that built it took (seconds).
        seen_stamp: newest stamp of any frame the keyframe policy had considered when this state
            was current; ``min_stamp`` waits for this. It can grow without a new version when the
            policy rejects frames (the scene's content is then unchanged).
    """

    version: int
    latents: torch.Tensor
    keyframes: tuple[KeyframeInput, ...]
    created_at: float
    update_sec: float
    seen_stamp: float = 0.0

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
        """The largest keyframe stamp (``SpatialAnswer.scene_stamp``)."""
        return max((k.stamp for k in self.keyframes), default=0.0)

    @property
    def num_frames(self) -> int:
        """How many keyframes the scene holds."""
        return len(self.keyframes)


@dataclass(frozen=True)
class EngineStats(SceneStatusReport):
    """The scene engine's health at one instant (``SceneStatus`` and ``/diagnostics``).

    Accounting: ``frames_received == frames_dropped + frames_seen + frames_buffered`` always holds
    (``frames_dropped`` counts bad frames, queue overflow and frames discarded by ``reset``).

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
    """

    # The SceneStatus fields come from SceneStatusReport; the engine's own counters follow.
    frames_seen: int = 0
    frames_bad: int = 0
    frames_overflow: int = 0
    resets: int = 0

    def is_consistent(self) -> bool:
        """Whether every received frame is accounted for exactly once."""
        return (
            self.frames_received == self.frames_dropped + self.frames_seen + self.frames_buffered
        )

    def status_report(self) -> SceneStatusReport:
        """The fields of ``msg/SceneStatus.msg``."""
        return SceneStatusReport(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(SceneStatusReport)}
        )

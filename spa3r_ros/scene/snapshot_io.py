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

"""Scene snapshots on disk: one safetensors file per scene.

Layout: the tensor ``latents`` (``[1, Q, D]``, the dtype it was computed in) and one tensor
``rgb_NNN`` (``[h, w, 3]`` uint8) per keyframe, in stamp order; the safetensors header's metadata
holds one JSON document under the key ``spa3r_scene``::

    {"format": 1, "model_id": "tiny-random", "version": 7, "newest_stamp": 12.5,
     "keyframes": [{"seq": 3, "stamp": 10.0, "camera": "/cam/image_raw"}, ...]}

The file is written to a temporary name and renamed, so a crash never leaves half a file. Reading
checks the format, the keyframe count and every tensor, and raises
:class:`~spa3r_ros.core.errors.CheckpointError` with the reason.
"""

from dataclasses import dataclass
import json
import math
import os
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.torch import save_file
import torch

from spa3r_ros.core.errors import CheckpointError

FORMAT_VERSION = 1
METADATA_KEY = 'spa3r_scene'
LATENTS_KEY = 'latents'


def _rgb_key(index: int) -> str:
    return f'rgb_{index:03d}'


@dataclass(frozen=True)
class SavedKeyframe:
    """One keyframe of a scene file.

    Attributes:
        stamp: capture time in seconds.
        camera: topic or ``frame_id`` it came from.
        rgb: ``[h, w, 3]`` uint8 pixels.
        seq: its arrival number in the engine that saved it (informational).
    """

    stamp: float
    camera: str
    rgb: np.ndarray
    seq: int = 0


@dataclass(frozen=True)
class SavedScene:
    """The content of a scene file.

    Attributes:
        model_id: the models that computed the latent.
        version: the scene version when it was saved.
        latents: ``[1, Q, D]`` on the CPU.
        keyframes: the keyframes in stamp order.
        newest_stamp: the largest keyframe stamp.
    """

    model_id: str
    version: int
    latents: torch.Tensor
    keyframes: tuple[SavedKeyframe, ...]
    newest_stamp: float


def write_scene(path: str | os.PathLike, scene: SavedScene) -> Path:
    """Write a scene file atomically.

    Args:
        path: destination (parent folders are created).
        scene: what to write.

    Returns:
        The path written.

    Raises:
        ValueError: if the scene has no keyframes or the latents are not ``[1, Q, D]``.
    """
    if not scene.keyframes:
        raise ValueError('a scene file needs at least one keyframe')
    if scene.latents.ndim != 3 or scene.latents.shape[0] != 1:
        raise ValueError(f'latents must be [1, Q, D], got {tuple(scene.latents.shape)}')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {LATENTS_KEY: scene.latents.detach().to('cpu').contiguous()}
    for index, keyframe in enumerate(scene.keyframes):
        tensors[_rgb_key(index)] = torch.from_numpy(np.ascontiguousarray(keyframe.rgb))
    meta = {
        'format': FORMAT_VERSION,
        'model_id': scene.model_id,
        'version': scene.version,
        'newest_stamp': scene.newest_stamp,
        'keyframes': [
            {'seq': k.seq, 'stamp': k.stamp, 'camera': k.camera} for k in scene.keyframes
        ],
    }
    tmp = path.with_name(path.name + '.tmp')
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    os.replace(tmp, path)
    return path


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f'scene file {path}: {why}')


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    return _fail(path, f'not a readable safetensors file ({type(err).__name__}: {err})')


def read_scene(path: str | os.PathLike) -> SavedScene:
    """Read and check a scene file.

    Args:
        path: a file written by :func:`write_scene`.

    Returns:
        The scene, latents on the CPU.

    Raises:
        CheckpointError: if the file is missing, unreadable, of another format, or its tensors do
            not match its metadata (the message names the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, 'no such file')
    # The header and key names are checked first, so a wrong file (say a model checkpoint) is
    # refused without reading its tensors.
    try:
        with safe_open(str(path), framework='pt') as handle:
            header = handle.metadata() or {}
            keys = set(handle.keys())
    except Exception as err:  # safetensors raises several types for a damaged file
        raise _unreadable(path, err) from err
    if METADATA_KEY not in header:
        raise _fail(path, f'no {METADATA_KEY!r} metadata: not a scene snapshot')
    try:
        meta = json.loads(header[METADATA_KEY])
        model_id = str(meta['model_id'])
        version = int(meta['version'])
        newest_stamp = float(meta['newest_stamp'])
        entries = list(meta['keyframes'])
        fmt = int(meta['format'])
    except (ValueError, KeyError, TypeError) as err:
        raise _fail(path, f'malformed metadata ({type(err).__name__}: {err})') from err
    if fmt != FORMAT_VERSION:
        raise _fail(path, f'format {fmt}, this version reads format {FORMAT_VERSION}')
    if LATENTS_KEY not in keys:
        raise _fail(path, 'latents must be a [1, Q, D] tensor, got None')
    if not entries:
        raise _fail(path, 'no keyframes')
    expected = {LATENTS_KEY} | {_rgb_key(i) for i in range(len(entries))}
    if keys != expected:
        raise _fail(path, f'tensors {sorted(keys)} do not match {len(entries)} keyframes')
    try:
        with safe_open(str(path), framework='pt') as handle:
            tensors = {key: handle.get_tensor(key) for key in keys}
    except Exception as err:
        raise _unreadable(path, err) from err
    latents = tensors[LATENTS_KEY]
    if latents.ndim != 3 or latents.shape[0] != 1:
        raise _fail(path, f'latents must be a [1, Q, D] tensor, got {tuple(latents.shape)}')
    if not torch.isfinite(latents.float()).all():
        raise _fail(path, 'latents contain non-finite values')
    keyframes = []
    for index, entry in enumerate(entries):
        rgb = tensors[_rgb_key(index)]
        if rgb.dtype != torch.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise _fail(
                path,
                f'{_rgb_key(index)} must be [h, w, 3] uint8, got {rgb.dtype} {tuple(rgb.shape)}',
            )
        try:
            stamp = float(entry['stamp'])
            camera = str(entry['camera'])
            seq = int(entry.get('seq', 0))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise _fail(path, f'malformed keyframe entry {index}: {entry!r}') from err
        if not math.isfinite(stamp):
            raise _fail(path, f'keyframe {index} has a non-finite stamp {stamp!r}')
        keyframes.append(SavedKeyframe(stamp, camera, rgb.numpy(), seq))  # the tensor owns it
    return SavedScene(model_id, version, latents, tuple(keyframes), newest_stamp)

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

The file is written to a temporary file next to it and then linked or renamed into place, so a
crash never leaves half a file and a failure removes the temporary file. An existing file is
replaced only when asked (``overwrite``), and only if it is a regular scene snapshot (never a
directory, device, FIFO, symlink or any other file).

Reading trusts nothing in the file: the format, every metadata field against the range of the
message field it ends up in (``version`` <= :data:`~spa3r_ros.core.types.MAX_SCENE_VERSION`,
stamps in ``[0, MAX_STAMP_SEC]`` for ``builtin_interfaces/Time``, camera and model names of at
most :data:`MAX_NAME_CHARS` characters), the keyframe count and every tensor's shape and dtype.
Anything else raises :class:`~spa3r_ros.core.errors.CheckpointError` with the reason.
"""

from dataclasses import dataclass
import errno
import json
import math
import os
from pathlib import Path
import stat
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.torch import save_file
import torch

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.core.types import MAX_SCENE_VERSION, MAX_STAMP_SEC

FORMAT_VERSION = 1
METADATA_KEY = 'spa3r_scene'
LATENTS_KEY = 'latents'
# Longest camera name or model id a scene file may hold (characters).
MAX_NAME_CHARS = 1024
# Floating-point dtypes a saved latent may have (the dtypes the models compute in).
LATENT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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


def write_scene(path: str | os.PathLike, scene: SavedScene, *, overwrite: bool = False) -> Path:
    """Write a scene file atomically, never replacing anything but a scene file.

    Args:
        path: destination; its folder must exist (none is created).
        scene: what to write (checked against the same ranges :func:`read_scene` enforces).
        overwrite: replace an existing regular scene snapshot of that name; without it an
            existing file of any kind is left alone.

    Returns:
        The path written.

    Raises:
        ValueError: if the scene has no keyframes, the latents are not ``[1, Q, D]`` or a field
            is out of range.
        CheckpointError: if the folder does not exist, the name exists and ``overwrite`` is off,
            or the existing file is not a regular scene snapshot; or the write failed (the
            temporary file is removed).
    """
    if not scene.keyframes:
        raise ValueError('a scene file needs at least one keyframe')
    if scene.latents.ndim != 3 or scene.latents.shape[0] != 1:
        raise ValueError(f'latents must be [1, Q, D], got {tuple(scene.latents.shape)}')
    meta = {
        'format': FORMAT_VERSION,
        'model_id': scene.model_id,
        'version': scene.version,
        'newest_stamp': scene.newest_stamp,
        'keyframes': [
            {'seq': k.seq, 'stamp': k.stamp, 'camera': k.camera} for k in scene.keyframes
        ],
    }
    problem = _metadata_problem(meta)
    if problem:
        raise ValueError(f'cannot write this scene: {problem}')
    path = Path(path)
    if not path.parent.is_dir():
        raise _fail(path, f'the folder {path.parent} does not exist')
    _check_replaceable(path, overwrite)
    tensors = {LATENTS_KEY: scene.latents.detach().to('cpu').contiguous()}
    for index, keyframe in enumerate(scene.keyframes):
        tensors[_rgb_key(index)] = torch.from_numpy(np.ascontiguousarray(keyframe.rgb))
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
        with open(tmp, 'rb') as handle:
            os.fsync(handle.fileno())
        _move_into_place(tmp, path, overwrite)
    except CheckpointError:
        raise
    except Exception as err:  # OSError (disk full, permissions) or the writer's own errors
        raise _fail(path, f'could not be written ({type(err).__name__}: {err})') from err
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_scene_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (not a symlink) with a scene-snapshot header."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with safe_open(str(path), framework='pt') as handle:
            return METADATA_KEY in (handle.metadata() or {})
    except Exception:  # unreadable or not safetensors: not a scene file
        return False


def _check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuse an existing ``path`` unless overwrite is set and it is a regular scene file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise _fail(path, 'is a symbolic link: refused')
    if not stat.S_ISREG(mode):
        raise _fail(path, 'exists and is not a regular file (a directory, device or FIFO)')
    if not overwrite:
        raise _fail(path, 'exists; set overwrite to replace it')
    if not is_scene_file(path):
        raise _fail(path, 'exists and is not a scene snapshot: refused even with overwrite')


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished temporary file its name (atomic; a new name never replaces a file)."""
    if overwrite:
        _check_replaceable(path, overwrite)  # once more, right before: it may have changed
        os.replace(tmp, path)  # replaces the name only: never writes through to another file
        return
    try:
        os.link(tmp, path)  # fails if the name exists, whatever it is, with no race
    except FileExistsError:
        raise _fail(path, 'exists; set overwrite to replace it') from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # A file system without hard links: check, then rename (a narrow race remains).
        _check_replaceable(path, overwrite)
        os.replace(tmp, path)


def _missing_keys(meta: object) -> str:
    """What is missing from the metadata's structure ('' if nothing)."""
    if not isinstance(meta, dict):
        return f'a JSON {type(meta).__name__}, not an object'
    absent = [
        k for k in ('format', 'model_id', 'version', 'newest_stamp', 'keyframes') if k not in meta
    ]
    if absent:
        return f'no {absent}'
    entries = meta['keyframes']
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return 'keyframes must be a list of objects'
    for index, entry in enumerate(entries):
        if 'stamp' not in entry or 'camera' not in entry:
            return f'keyframe entry {index} needs a stamp and a camera'
    return ''


def _metadata_problem(meta: dict) -> str:
    """What is out of range in scene metadata ('' if nothing): the message fields' ranges."""
    version = meta['version']
    if type(version) is not int or not 0 <= version <= MAX_SCENE_VERSION:
        return f'version {version!r} is not an integer in [0, {MAX_SCENE_VERSION}]'
    for key, value in (('model_id', meta['model_id']),) + tuple(
        (f'keyframe {i} camera', k['camera']) for i, k in enumerate(meta['keyframes'])
    ):
        if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
            return f'{key} must be a string of at most {MAX_NAME_CHARS} characters'
    stamps = [('newest_stamp', meta['newest_stamp'])] + [
        (f'keyframe {i} stamp', k['stamp']) for i, k in enumerate(meta['keyframes'])
    ]
    for key, value in stamps:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0 <= value <= MAX_STAMP_SEC
        ):
            return (
                f'{key} {value!r} is not a time in [0, {MAX_STAMP_SEC:.0f}] s '
                '(builtin_interfaces/Time)'
            )
    for i, k in enumerate(meta['keyframes']):
        seq = k.get('seq', 0)
        if type(seq) is not int or not -(2**63) <= seq < 2**63:
            return f'keyframe {i} seq {seq!r} is not a 64-bit integer'
    return ''


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
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise _fail(path, 'no such file') from None
    if not stat.S_ISREG(mode):
        raise _fail(path, 'not a regular file')
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
    except (ValueError, RecursionError) as err:  # RecursionError: deeply nested JSON
        raise _fail(path, f'malformed metadata ({type(err).__name__}: {err})') from err
    missing = _missing_keys(meta)
    if missing:
        raise _fail(path, f'malformed metadata: {missing}')
    fmt, entries = meta['format'], meta['keyframes']
    if type(fmt) is not int or fmt != FORMAT_VERSION:
        raise _fail(path, f'format {fmt!r}, this version reads format {FORMAT_VERSION}')
    problem = _metadata_problem(meta)
    if problem:
        raise _fail(path, problem)
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
    if latents.ndim != 3 or latents.shape[0] != 1 or latents.dtype not in LATENT_DTYPES:
        raise _fail(
            path,
            f'latents must be a [1, Q, D] floating-point tensor, got {latents.dtype} '
            f'{tuple(latents.shape)}',
        )
    if not torch.isfinite(latents.float()).all():
        raise _fail(path, 'latents contain non-finite values')
    keyframes = []
    for index, entry in enumerate(entries):
        rgb = tensors[_rgb_key(index)]
        if rgb.dtype != torch.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise _fail(
                path,
                f'{_rgb_key(index)} must be [h, w, 3] uint8, got {rgb.dtype} {tuple(rgb.shape)}',
            )
        stamp = float(entry['stamp'])
        keyframes.append(  # the tensor owns the pixels
            SavedKeyframe(stamp, entry['camera'], rgb.numpy(), int(entry.get('seq', 0)))
        )
    return SavedScene(
        str(meta['model_id']),
        int(meta['version']),
        latents,
        tuple(keyframes),
        float(meta['newest_stamp']),
    )

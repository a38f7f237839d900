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

"""Scene files: crafted metadata is refused, writes are atomic and never replace other files."""

import json
import os

import numpy as np
import pytest
from safetensors.torch import save_file
import torch

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.core.types import MAX_SCENE_VERSION, MAX_STAMP_SEC
from spa3r_ros.scene import snapshot_io
from spa3r_ros.scene.snapshot_io import (
    is_scene_file,
    METADATA_KEY,
    read_scene,
    SavedKeyframe,
    SavedScene,
    write_scene,
)


def scene(version=3, stamp=10.0):
    rgb = np.zeros((4, 6, 3), np.uint8)
    return SavedScene(
        model_id='tiny-random',
        version=version,
        latents=torch.zeros(1, 2, 4),
        keyframes=(SavedKeyframe(stamp, '/cam', rgb, seq=1),),
        newest_stamp=stamp,
    )


def crafted(tmp_path, **changes):
    """A scene file whose metadata is a valid one with ``changes`` applied (written raw)."""
    meta = {
        'format': 1,
        'model_id': 'tiny-random',
        'version': 3,
        'newest_stamp': 10.0,
        'keyframes': [{'seq': 1, 'stamp': 10.0, 'camera': '/cam'}],
    }
    meta['keyframes'][0].update(changes.pop('keyframe', {}))
    meta.update(changes)
    path = tmp_path / 'crafted.safetensors'
    tensors = {'latents': torch.zeros(1, 2, 4), 'rgb_000': torch.zeros(4, 6, 3, dtype=torch.uint8)}
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def test_round_trip_keeps_the_largest_valid_values(tmp_path):
    path = tmp_path / 's.safetensors'
    write_scene(path, scene(version=MAX_SCENE_VERSION, stamp=MAX_STAMP_SEC))
    loaded = read_scene(path)
    assert loaded.version == MAX_SCENE_VERSION and loaded.newest_stamp == MAX_STAMP_SEC
    assert loaded.keyframes[0].camera == '/cam' and loaded.keyframes[0].rgb.shape == (4, 6, 3)


@pytest.mark.parametrize(
    ('changes', 'match'),
    [
        ({'version': 2**64}, 'version'),
        ({'version': 2**64 - 1}, 'version'),  # one more keyframe would overflow uint64
        ({'version': MAX_SCENE_VERSION + 1}, 'version'),
        ({'version': -1}, 'version'),
        ({'version': 1e30}, 'version'),
        ({'version': True}, 'version'),
        ({'version': '7'}, 'version'),
        ({'newest_stamp': 1e30}, 'newest_stamp'),
        ({'keyframe': {'stamp': 1e30}}, 'keyframe 0 stamp'),
        ({'keyframe': {'stamp': 2**31 + 1.0}}, 'keyframe 0 stamp'),
        ({'keyframe': {'stamp': -1.0}}, 'keyframe 0 stamp'),
        ({'keyframe': {'stamp': 'NaN'}}, 'keyframe 0 stamp'),
        ({'keyframe': {'stamp': None}}, 'keyframe 0 stamp'),
        ({'keyframe': {'camera': 'c' * 5000}}, 'camera must be a string'),
        ({'keyframe': {'camera': ['/cam']}}, 'camera must be a string'),
        ({'keyframe': {'seq': 2**70}}, 'seq'),
        ({'model_id': {'a': 1}}, 'model_id'),
        ({'format': 1.0}, 'format'),
        ({'keyframes': 'none'}, 'list of objects'),
        ({'keyframes': [5]}, 'list of objects'),
    ],
)
def test_crafted_metadata_is_refused(tmp_path, changes, match):
    path = crafted(tmp_path, **changes)
    with pytest.raises(CheckpointError, match=match):
        read_scene(path)


def test_nan_stamps_written_by_json_are_refused(tmp_path):
    path = crafted(tmp_path)
    raw = json.dumps(
        {
            'format': 1,
            'model_id': 'm',
            'version': 1,
            'newest_stamp': float('nan'),
            'keyframes': [{'stamp': float('inf'), 'camera': 'c'}],
        }
    )
    tensors = {'latents': torch.zeros(1, 2, 4), 'rgb_000': torch.zeros(4, 6, 3, dtype=torch.uint8)}
    save_file(tensors, str(path), metadata={METADATA_KEY: raw})
    with pytest.raises(CheckpointError, match='newest_stamp'):
        read_scene(path)


@pytest.mark.parametrize(
    'raw',
    ['[' * 100000 + ']' * 100000, '[1, 2]', '"text"', '{"format": 1}', '{broken'],
)
def test_malformed_metadata_is_refused(tmp_path, raw):
    path = tmp_path / 'm.safetensors'
    tensors = {'latents': torch.zeros(1, 2, 4)}
    save_file(tensors, str(path), metadata={METADATA_KEY: raw})
    with pytest.raises(CheckpointError, match='malformed metadata'):
        read_scene(path)


def test_bad_tensors_are_refused(tmp_path):
    path = tmp_path / 't.safetensors'
    meta = json.dumps(
        {
            'format': 1,
            'model_id': 'm',
            'version': 1,
            'newest_stamp': 1.0,
            'keyframes': [{'stamp': 1.0, 'camera': 'c'}],
        }
    )
    for tensors, match in (
        ({'latents': torch.zeros(1, 2, 4, dtype=torch.int64)}, 'floating-point'),
        ({'latents': torch.zeros(2, 4)}, r'\[1, Q, D\]'),
        ({'latents': torch.full((1, 2, 4), float('nan'))}, 'non-finite'),
    ):
        tensors['rgb_000'] = torch.zeros(4, 6, 3, dtype=torch.uint8)
        save_file(tensors, str(path), metadata={METADATA_KEY: meta})
        with pytest.raises(CheckpointError, match=match):
            read_scene(path)
    for rgb in (torch.zeros(0, 6, 3, dtype=torch.uint8), torch.zeros(4, 6, 3)):
        save_file({'latents': torch.zeros(1, 2, 4), 'rgb_000': rgb}, str(path), metadata={
            METADATA_KEY: meta
        })  # fmt: skip
        with pytest.raises(CheckpointError, match=r'\[h, w, 3\] uint8'):
            read_scene(path)


def test_write_refuses_out_of_range_scenes(tmp_path):
    for bad in (scene(version=2**64), scene(stamp=1e30), scene(stamp=-1.0)):
        with pytest.raises(ValueError, match='cannot write this scene'):
            write_scene(tmp_path / 'x.safetensors', bad)
    assert list(tmp_path.iterdir()) == []


def test_write_never_replaces_without_overwrite_and_only_snapshots_with_it(tmp_path):
    path = tmp_path / 's.safetensors'
    write_scene(path, scene(version=1))
    with pytest.raises(CheckpointError, match='exists; set overwrite'):
        write_scene(path, scene(version=2))
    assert read_scene(path).version == 1
    write_scene(path, scene(version=2), overwrite=True)
    assert read_scene(path).version == 2

    other = tmp_path / 'notes.safetensors'
    other.write_text('not a snapshot')
    with pytest.raises(CheckpointError, match='not a scene snapshot'):
        write_scene(other, scene(), overwrite=True)
    assert other.read_text() == 'not a snapshot'
    (tmp_path / 'dir.safetensors').mkdir()
    os.mkfifo(tmp_path / 'fifo.safetensors')
    (tmp_path / 'null.safetensors').symlink_to('/dev/null')
    for name, match in (
        ('dir.safetensors', 'not a regular file'),
        ('fifo.safetensors', 'not a regular file'),
        ('null.safetensors', 'symbolic link'),
    ):
        for overwrite in (False, True):
            with pytest.raises(CheckpointError, match=match):
                write_scene(tmp_path / name, scene(), overwrite=overwrite)
    assert not is_scene_file(tmp_path / 'null.safetensors')
    with pytest.raises(CheckpointError, match='does not exist'):
        write_scene(tmp_path / 'missing' / 'x.safetensors', scene())
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    assert leftovers == []


def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    def failing_save(tensors, filename, metadata):
        with open(filename, 'wb') as handle:
            handle.write(b'half a file')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(snapshot_io, 'save_file', failing_save)
    with pytest.raises(CheckpointError, match='could not be written.*No space left'):
        write_scene(tmp_path / 's.safetensors', scene())
    assert list(tmp_path.iterdir()) == []


def test_a_writer_error_of_any_kind_is_reported_and_cleaned_up(tmp_path, monkeypatch):
    def failing_save(tensors, filename, metadata):
        raise RuntimeError('serialisation failed')

    monkeypatch.setattr(snapshot_io, 'save_file', failing_save)
    with pytest.raises(CheckpointError, match='could not be written.*serialisation failed'):
        write_scene(tmp_path / 's.safetensors', scene())
    assert list(tmp_path.iterdir()) == []


def test_read_refuses_non_regular_files(tmp_path):
    os.mkfifo(tmp_path / 'fifo.safetensors')
    with pytest.raises(CheckpointError, match='not a regular file'):
        read_scene(tmp_path / 'fifo.safetensors')
    with pytest.raises(CheckpointError, match='not a regular file'):
        read_scene(tmp_path)

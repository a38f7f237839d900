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

"""The snapshot directory's path policy: every class of bad path is refused, good ones resolve."""

import os
from pathlib import Path
import socket

import pytest

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.scene.snapshot_store import default_directory, SnapshotStore


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / 'scenes')


def refused(store, name, match, for_save=True):
    with pytest.raises(CheckpointError, match=match):
        store.path_for(name, for_save=for_save)


def test_default_directory_follows_ros_home():
    assert default_directory({'ROS_HOME': '/data/ros'}) == Path('/data/ros/spa3r_scenes')
    home = Path(os.path.expanduser('~'))
    assert default_directory({}) == home / '.ros' / 'spa3r_scenes'
    assert SnapshotStore('').directory == default_directory()


def test_good_names_resolve_inside_the_directory(store, tmp_path):
    target = store.path_for('kitchen.safetensors', for_save=True)
    assert target == tmp_path / 'scenes' / 'kitchen.safetensors'
    assert (tmp_path / 'scenes').is_dir(), 'a save creates the snapshot directory itself'
    (tmp_path / 'scenes' / 'robot1').mkdir()
    assert store.path_for('robot1/a.safetensors', for_save=True).parent.name == 'robot1'
    target.write_bytes(b'x')
    assert store.path_for('kitchen.safetensors', for_save=False) == target


@pytest.mark.parametrize(
    ('name', 'match'),
    [
        ('/etc/passwd.safetensors', 'absolute paths'),
        ('/dev/null', 'absolute paths'),
        ('~/x.safetensors', 'absolute paths'),
        ('../x.safetensors', "'..'"),
        ('a/../../x.safetensors', "'..'"),
        ('./x.safetensors', "'.'"),
        ('a//x.safetensors', 'empty'),
        ('.hidden.safetensors', "starting with '.'"),
        ('x.safetensors.tmp', 'ends in .safetensors'),
        ('.safetensors', "starting with '.'"),
        ('scene', 'ends in .safetensors'),
        ('', 'give a file name'),
        ('a\0b.safetensors', 'NUL'),
        ('x' * 2000 + '.safetensors', 'longer than'),
        ('missing_folder/x.safetensors', 'folder does not exist'),
    ],
)
def test_bad_names_are_refused(store, name, match):
    refused(store, name, match)


def test_symlinks_out_of_the_directory_are_refused(store, tmp_path):
    root = tmp_path / 'scenes'
    store.path_for('first.safetensors', for_save=True)  # creates the directory
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'victim.safetensors').write_bytes(b'precious')
    (root / 'out').symlink_to(outside)
    refused(store, 'out/victim.safetensors', 'leads out')
    refused(store, 'out/new.safetensors', 'leads out')
    (root / 'link.safetensors').symlink_to(outside / 'victim.safetensors')
    refused(store, 'link.safetensors', 'symbolic link')
    refused(store, 'link.safetensors', 'symbolic link', for_save=False)
    (root / 'dangling.safetensors').symlink_to(tmp_path / 'nowhere')
    refused(store, 'dangling.safetensors', 'symbolic link')
    # A symlinked folder that stays inside is fine.
    (root / 'inside').mkdir()
    (root / 'alias').symlink_to(root / 'inside')
    resolved = store.path_for('alias/x.safetensors', for_save=True)
    assert resolved == root / 'inside' / 'x.safetensors'


def test_non_regular_targets_are_refused(store, tmp_path):
    root = tmp_path / 'scenes'
    store.path_for('first.safetensors', for_save=True)
    (root / 'dir.safetensors').mkdir()
    os.mkfifo(root / 'fifo.safetensors')
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / 'sock.safetensors'))
        for name in ('dir.safetensors', 'fifo.safetensors', 'sock.safetensors'):
            refused(store, name, 'not a regular file')
            refused(store, name, 'not a regular file', for_save=False)
    finally:
        sock.close()


def test_load_needs_an_existing_file_and_directory(tmp_path):
    store = SnapshotStore(tmp_path / 'never_created')
    refused(store, 'x.safetensors', 'does not exist', for_save=False)
    assert not (tmp_path / 'never_created').exists(), 'a load creates nothing'
    store.path_for('y.safetensors', for_save=True)
    refused(store, 'x.safetensors', 'no such file', for_save=False)


def test_a_directory_that_cannot_be_created_is_reported(tmp_path):
    (tmp_path / 'file').write_text('not a folder')
    store = SnapshotStore(tmp_path / 'file' / 'scenes')
    refused(store, 'x.safetensors', 'cannot be created')


@pytest.mark.parametrize('for_save', [True, False])
def test_names_the_file_system_refuses_are_refused_with_its_reason(store, for_save):
    """A component over the file system's 255 bytes (within the 1024-character limit) raised
    OSError from lstat or is_dir: the node counted a client's bad name as its own error."""
    store.path_for('x.safetensors', for_save=True)  # the directory exists
    for name in (
        'a' * 300 + '.safetensors',
        'a' * 300 + '/x.safetensors',
        'é' * 200 + '.safetensors',
    ):
        refused(store, name, 'the file system refuses it: File name too long', for_save=for_save)

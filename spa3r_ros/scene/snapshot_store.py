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

"""The snapshot directory: where ``~/save_scene`` and ``~/load_scene`` may read and write.

A request names a file *inside* one directory (parameter ``snapshots.directory``; by default
``$ROS_HOME/spa3r_scenes``, ``ROS_HOME`` defaulting to ``~/.ros``). The path policy, for every
request:

* a relative name ending in ``.safetensors``: no absolute path, no ``..`` (nor ``.``) component,
  no component starting with ``.`` (the temporary files' names), no NUL, no empty component;
* sub-folders are allowed only if they already exist and, with every symlink resolved, are still
  inside the directory (nothing but the directory itself is ever created);
* the file itself must not be a symlink, and if it exists it must be a regular file (never a
  directory, device node, FIFO or socket);
* saving never replaces an existing file unless the request says ``overwrite``, and then only a
  regular scene snapshot (:func:`~spa3r_ros.scene.snapshot_io.write_scene` enforces it at the
  moment of the rename, atomically, and removes its temporary file on any failure).

ROS-free: the node only maps the service request onto :meth:`SnapshotStore.path_for`.
"""

import os
from pathlib import Path, PurePosixPath
import stat

from spa3r_ros.core.errors import CheckpointError

DIRECTORY_NAME = 'spa3r_scenes'
SUFFIX = '.safetensors'
# Longest accepted request path (characters); each component is further limited by the OS.
MAX_NAME_CHARS = 1024


def default_directory(environ: dict[str, str] | None = None) -> Path:
    """``$ROS_HOME/spa3r_scenes``, with ``ROS_HOME`` defaulting to ``~/.ros`` (as ROS does)."""
    environ = os.environ if environ is None else environ
    ros_home = environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return Path(os.path.expanduser(ros_home)) / DIRECTORY_NAME


class SnapshotStore:
    """Resolves request names to paths inside one snapshot directory, or refuses them.

    Args:
        directory: the snapshot directory; ``''`` means :func:`default_directory`. ``~`` is
            expanded; a relative path is taken from the current directory at construction.
    """

    def __init__(self, directory: str | os.PathLike = '') -> None:
        raw = os.fspath(directory)
        self.directory = Path(os.path.expanduser(raw)).absolute() if raw else default_directory()

    def path_for(self, name: str, *, for_save: bool) -> Path:
        """The path a request names, after every check of the path policy.

        Args:
            name: the request's ``path`` field.
            for_save: True for a save (the directory is created if missing, and the name may be
                new); False for a load (the file must exist).

        Returns:
            The file's path inside the (resolved) snapshot directory.

        Raises:
            CheckpointError: naming the request and the rule it breaks (or the file system's
                reason, e.g. a name component longer than it allows).
        """
        parts = self._check_name(name)
        if for_save:
            try:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as err:
                why = f'the snapshot directory cannot be created: {err}'
                raise self._refuse(name, why) from err
        try:
            return self._resolve(name, parts, for_save=for_save)
        except OSError as err:
            # The file system refuses the name itself (a component over its 255 bytes) or a
            # folder on the way: the request's fault or the directory's, never a node error.
            why = f'the file system refuses it: {err.strerror or err}'
            raise self._refuse(name, why) from None

    def _resolve(self, name: str, parts: tuple[str, ...], *, for_save: bool) -> Path:
        root = Path(os.path.realpath(self.directory))
        if not root.is_dir():
            raise self._refuse(name, f'the snapshot directory {self.directory} does not exist')
        parent = Path(os.path.realpath(root.joinpath(*parts[:-1])))
        if parent != root and root not in parent.parents:
            raise self._refuse(name, 'it leads out of the snapshot directory (a symlink)')
        if not parent.is_dir():
            raise self._refuse(name, 'its folder does not exist in the snapshot directory')
        target = parent / parts[-1]
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            if for_save:
                return target
            raise self._refuse(name, 'no such file in the snapshot directory') from None
        if stat.S_ISLNK(mode):
            raise self._refuse(name, 'it is a symbolic link')
        if not stat.S_ISREG(mode):
            raise self._refuse(name, 'it is not a regular file (a directory, device or FIFO)')
        return target

    def _check_name(self, name: str) -> tuple[str, ...]:
        if not isinstance(name, str) or not name:
            raise self._refuse(name, 'give a file name relative to the snapshot directory')
        if len(name) > MAX_NAME_CHARS:
            raise self._refuse(name[:64] + '...', f'longer than {MAX_NAME_CHARS} characters')
        if '\0' in name:
            raise self._refuse(name, 'it contains a NUL character')
        path = PurePosixPath(name)
        if path.is_absolute() or name.startswith('~'):
            raise self._refuse(name, 'absolute paths are refused: name a file inside it')
        raw_parts = name.split('/')
        if any(part in ('', '.', '..') for part in raw_parts):
            raise self._refuse(name, "empty, '.' and '..' path components are refused")
        if any(part.startswith('.') for part in raw_parts):
            raise self._refuse(name, "names starting with '.' are refused")
        if not name.endswith(SUFFIX):  # (a bare SUFFIX starts with ".": refused above)
            raise self._refuse(name, f'a snapshot file name ends in {SUFFIX}')
        return tuple(raw_parts)

    def _refuse(self, name: object, why: str) -> CheckpointError:
        return CheckpointError(
            f'snapshot path {name!r} refused: {why} (snapshot directory {self.directory})'
        )

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


"""What ROS 2 Jazzy's and Kilted's ``ros2 bag`` read, and a check of a bag's metadata against it.

rosbag2 is not on PyPI, so its rules are modelled here from its sources (rosbag2_storage's
``yaml.hpp`` and ``qos.cpp``, ``jazzy`` branch and ``rolling`` of late 2024, from which Kilted's
0.32 branched) and checked against bags that rosbags writes the way each distribution does:

* Jazzy (rosbag2 0.26) and Kilted (0.32) write metadata version 9 (introduced in 0.25.0, before
  Jazzy). rosbags 0.11.9, which knows Kilted's and Lyrical's message types, reads nothing newer.
* Both read every version from 4 on, with one layout per version: ``offered_qos_profiles`` is a
  YAML *string* up to version 8 and a *list* of mappings from 9 (decoded by version: a list in a
  version-8 file or a string in a version-9 file fails), ``type_description_hash`` is required
  from 7, ``custom_data`` (a mapping or null) from 6, ``ros_distro`` from 8.
* Humble's rosbag2 (0.15) reads ``offered_qos_profiles`` as a string whatever the version, so it
  cannot read version 9; version 8 is the newest layout its reader parses (not tested here).

Hence :data:`spa3r_ros.data.rosbag_io.BAG_VERSION` is 8: both tested distributions read it, it
carries everything 9 does (only the QoS enums are numbers instead of names), and Humble's reader
parses it too. Type hashes (RIHS01) of the types the bag tools write are equal in Jazzy and
Kilted (the ROS tests compare them with each distribution's installed message definitions).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.typesys import get_typestore, Stores
import yaml


@dataclass(frozen=True)
class Rosbag2Format:
    """What one distribution's rosbag2 writes and reads.

    Attributes:
        writes: the metadata version ``ros2 bag record`` writes.
        reads: the metadata versions its reader decodes.
        typestore: the rosbags typestore with that distribution's message definitions.
    """

    writes: int
    reads: range
    typestore: Stores


ROSBAG2_FORMATS = {
    'jazzy': Rosbag2Format(9, range(4, 10), Stores.ROS2_JAZZY),  # rosbag2 0.26
    'kilted': Rosbag2Format(9, range(4, 10), Stores.ROS2_KILTED),  # rosbag2 0.32
}
STORAGE_IDS = ('mcap', 'sqlite3')  # the default storage plugins of both
QOS_KEYS = (
    'history',
    'depth',
    'reliability',
    'durability',
    'deadline',
    'lifespan',
    'liveliness',
    'liveliness_lease_duration',
    'avoid_ros_namespace_conventions',
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _qos_problems(profiles: Any, version: int, where: str) -> list[str]:
    """Problems of one topic's ``offered_qos_profiles`` in a file of ``version``."""
    if version < 9:
        if not isinstance(profiles, str):
            return [f'{where}: offered_qos_profiles must be a YAML string in version {version}']
        if not profiles:  # rosbag2 reads an empty string as no profiles
            return []
        profiles = yaml.safe_load(profiles)
    if not isinstance(profiles, list):
        return [f'{where}: offered_qos_profiles must be a list, got {type(profiles).__name__}']
    problems = []
    for i, qos in enumerate(profiles):
        missing = [k for k in QOS_KEYS if not isinstance(qos, dict) or k not in qos]
        if missing:
            problems.append(f'{where}: QoS profile {i} lacks {missing}')
            continue
        # Version 8 spells the policies as numbers, version 9 as names (rosbag2's qos.cpp).
        enum_ok = _is_int if version < 9 else (lambda v: isinstance(v, str))
        for key in ('history', 'reliability', 'durability', 'liveliness'):
            if not enum_ok(qos[key]):
                problems.append(f'{where}: QoS {key}={qos[key]!r} is not a v{version} value')
        for key in ('deadline', 'lifespan', 'liveliness_lease_duration'):
            duration = qos[key]
            fields = duration if isinstance(duration, dict) else {}
            if not all(_is_int(fields.get(k)) for k in ('sec', 'nsec')):
                problems.append(f'{where}: QoS {key} must be {{sec, nsec}}, got {duration!r}')
    return problems


def metadata_problems(info: dict, distro: str) -> list[str]:
    """What keeps ``distro``'s ``ros2 bag`` from decoding a bag's metadata (empty when nothing).

    Args:
        info: the ``rosbag2_bagfile_information`` mapping of a ``metadata.yaml``.
        distro: a key of :data:`ROSBAG2_FORMATS`.

    Returns:
        One sentence per problem: a missing or mistyped field, an unknown version, a QoS
        layout of the wrong version, or a type hash that differs from ``distro``'s.
    """
    fmt = ROSBAG2_FORMATS[distro]
    version = info.get('version')
    if not _is_int(version) or version not in fmt.reads:
        return [f'version {version!r}: {distro} reads {fmt.reads.start}..{fmt.reads.stop - 1}']
    problems = []

    def need(mapping: dict, key: str, kind: Any, where: str = '') -> Any:
        value = mapping.get(key) if isinstance(mapping, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            problems.append(f'{where}{key}: expected {kind}, got {value!r}')
            return None
        return value

    if need(info, 'storage_identifier', str) not in (*STORAGE_IDS, None):
        problems.append(f'storage_identifier {info["storage_identifier"]!r} is not {STORAGE_IDS}')
    need(need(info, 'duration', dict) or {}, 'nanoseconds', int, 'duration.')
    need(need(info, 'starting_time', dict) or {}, 'nanoseconds_since_epoch', int, 'starting_time.')
    need(info, 'message_count', int)
    paths = need(info, 'relative_file_paths', list) or []
    if not all(isinstance(p, str) for p in paths):
        problems.append(f'relative_file_paths must be strings: {paths!r}')
    if version >= 3:
        need(info, 'compression_format', str)
        need(info, 'compression_mode', str)
    if version >= 5:
        for i, entry in enumerate(need(info, 'files', list) or []):
            where = f'files[{i}].'
            need(entry, 'path', str, where)
            need(entry, 'message_count', int, where)
            need(need(entry, 'duration', dict, where) or {}, 'nanoseconds', int, where)
            start = need(entry, 'starting_time', dict, where) or {}
            need(start, 'nanoseconds_since_epoch', int, where)
    if version >= 6 and info.get('custom_data') is not None:
        need(info, 'custom_data', dict)
    if version >= 8:
        need(info, 'ros_distro', str)

    typestore = get_typestore(fmt.typestore)
    for i, entry in enumerate(need(info, 'topics_with_message_count', list) or []):
        where = f'topics_with_message_count[{i}].'
        need(entry, 'message_count', int, where)
        topic = need(entry, 'topic_metadata', dict, where) or {}
        for key in ('name', 'type', 'serialization_format'):
            need(topic, key, str, where)
        problems += _qos_problems(topic.get('offered_qos_profiles'), version, where.rstrip('.'))
        if version >= 7:
            digest = need(topic, 'type_description_hash', str, where)
            msgtype = topic.get('type')
            if digest and msgtype in typestore.types:
                expected = typestore.hash_rihs01(msgtype)
                if digest != expected:
                    problems.append(f"{where}type_description_hash: not {distro}'s {msgtype}")
    return problems


def bag_problems(path: str | Path, distros: tuple[str, ...] = tuple(ROSBAG2_FORMATS)) -> dict:
    """``{distro: [problem, ...]}`` for the ``metadata.yaml`` of the bag directory ``path``."""
    text = (Path(path) / 'metadata.yaml').read_text()
    info = (yaml.safe_load(text) or {}).get('rosbag2_bagfile_information')
    if not isinstance(info, dict):
        return {d: ['metadata.yaml has no rosbag2_bagfile_information mapping'] for d in distros}
    return {d: metadata_problems(info, d) for d in distros}

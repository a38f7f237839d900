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


"""The interface files and the core's dataclasses describe the same fields (parsed as text)."""

import dataclasses
from pathlib import Path
import re
import typing

from spa3r_ros.core.types import (
    QueryFeedback,
    ResultCode,
    SceneStatusReport,
    SpatialAnswer,
    SpatialQueryRequest,
    Stage,
    Task,
)

ROOT = Path(__file__).resolve().parents[2]
# Interface type -> the Python types the core may use for it.
COMPATIBLE = {
    'uint8': {'int', 'Task', 'ResultCode'},
    'int32': {'int'},
    'uint32': {'int'},
    'uint64': {'int'},
    'float32': {'float'},
    'float64': {'float'},
    'string': {'str', 'Stage'},
    'string[]': {'tuple[str, ...]'},
    'bool': {'bool'},
    'builtin_interfaces/Time': {'float'},
}


def parse_sections(path: Path) -> list[tuple[dict[str, str], dict[str, int]]]:
    """Each ``---`` section as (fields: name->type, constants: name->value)."""
    sections = []
    for text in path.read_text().split('\n---\n'):
        fields, constants, previous = {}, {}, ''
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith('#'):
                previous = stripped
                continue
            decl = stripped.split('#')[0].strip()
            m = re.fullmatch(r'(\S+)\s+([A-Z_0-9]+)\s*=\s*(\S+)', decl)
            if m:
                constants[m.group(2)] = int(m.group(3))
                assert '#' in stripped, f'{path.name}: constant {m.group(2)} has no comment'
                continue
            ftype, fname = decl.split()
            assert previous.startswith('#'), f'{path.name}: field {fname} has no comment above it'
            fields[fname] = ftype
            previous = ''
        sections.append((fields, constants))
    return sections


def type_names(cls) -> dict[str, str]:
    hints = typing.get_type_hints(cls)
    names = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        names[f.name] = tp.__name__ if isinstance(tp, type) else str(tp)
    return names


def check(fields: dict[str, str], cls, skip: set[str] = frozenset()) -> None:
    py = type_names(cls)
    assert set(fields) - skip == set(py), (cls.__name__, set(fields) ^ set(py))
    for name, ftype in fields.items():
        if name in skip:
            continue
        assert py[name] in COMPATIBLE[ftype], (cls.__name__, name, ftype, py[name])


def test_spatial_query_action_matches_core_types():
    goal, result, feedback = parse_sections(ROOT / 'action' / 'SpatialQuery.action')
    check(goal[0], SpatialQueryRequest)
    check(result[0], SpatialAnswer)
    check(feedback[0], QueryFeedback)
    assert goal[1] == {t.name: t.value for t in Task}
    assert result[1] == {c.name: c.value for c in ResultCode}
    stage_line = (ROOT / 'action' / 'SpatialQuery.action').read_text().split('---')[2]
    for stage in Stage:
        assert f'"{stage.value}"' in stage_line


def test_scene_status_msg_matches_core_report():
    ((fields, constants),) = parse_sections(ROOT / 'msg' / 'SceneStatus.msg')
    assert constants == {}
    check(fields, SceneStatusReport, skip={'header'})


def test_parser_catches_drift():
    """The check fails when a field is missing, so it can catch real drift."""

    @dataclasses.dataclass
    class Missing:
        task: int = 0

    goal = parse_sections(ROOT / 'action' / 'SpatialQuery.action')[0][0]
    try:
        check(goal, Missing)
    except AssertionError:
        return
    raise AssertionError('drift not detected')


def test_scene_file_srv_is_documented_and_typed():
    request, response = parse_sections(ROOT / 'srv' / 'SceneFile.srv')
    assert request[0] == {'path': 'string', 'overwrite': 'bool'}
    assert response[0] == {'success': 'bool', 'message': 'string', 'scene_version': 'uint64'}

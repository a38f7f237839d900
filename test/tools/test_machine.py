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

"""Benchmark results name the code they measured; benchmarks and scripts import the package."""

import ast
import json
from pathlib import Path
import subprocess

import pytest

from spa3r_ros.tools.machine import git_state, machine_info, write_result

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ['git', '-C', str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, 'init', '-q')
    (tmp_path / 'code.py').write_text('x = 1\n')
    git(tmp_path, 'add', 'code.py')
    git(tmp_path, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'c')
    return tmp_path


def test_git_state_names_the_commit_and_whether_tracked_files_changed(repo: Path):
    head = git(repo, 'rev-parse', 'HEAD')
    assert git_state(repo) == {'git_commit': head, 'git_dirty': False}
    (repo / 'untracked.txt').write_text('results do not make the code dirty')
    assert git_state(repo)['git_dirty'] is False
    (repo / 'code.py').write_text('x = 2\n')
    assert git_state(repo) == {'git_commit': head, 'git_dirty': True}


def test_benchmark_results_written_by_an_earlier_run_do_not_make_the_code_dirty(repo: Path):
    results = repo / 'benchmarks' / 'results'
    results.mkdir(parents=True)
    (results / 'bench_x_cpu.md').write_text('old figures\n')
    git(repo, 'add', '.')
    git(repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'results')
    (results / 'bench_x_cpu.md').write_text('new figures\n')
    assert git_state(repo)['git_dirty'] is False
    (repo / 'code.py').write_text('x = 3\n')
    assert git_state(repo)['git_dirty'] is True


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path):
    assert git_state(tmp_path) == {'git_commit': None, 'git_dirty': None}


def test_machine_info_records_the_commit(repo: Path):
    info = machine_info('cpu', repo=repo)
    assert info['git_commit'] == git(repo, 'rev-parse', 'HEAD') and info['git_dirty'] is False
    assert info['device'] == 'cpu' and info['cpu_cores'] >= 1 and info['torch_version']


SCRIPTS = sorted([*(ROOT / 'benchmarks').glob('*.py'), *(ROOT / 'scripts').glob('*.py')])


@pytest.mark.parametrize('path', SCRIPTS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_benchmarks_and_scripts_import_the_package_not_each_other(path: Path):
    tree = ast.parse(path.read_text())
    source = path.read_text()
    assert 'sys.path' not in source, f'{path.name} edits sys.path'
    imported = {
        node.module.split('.')[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split('.')[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & {'benchmarks', 'scripts'}, f'{path.name} imports a sibling script'


def test_write_result_writes_json_and_markdown_side_by_side(tmp_path: Path, capsys):
    stem = tmp_path / 'results' / 'bench_x_cpu'  # the folder does not exist yet
    write_result(stem, {'device': 'cpu'}, [{'fps': 2.5}], '# bench x\n')
    assert json.loads((tmp_path / 'results' / 'bench_x_cpu.json').read_text()) == {
        'machine': {'device': 'cpu'},
        'rows': [{'fps': 2.5}],
    }
    assert (tmp_path / 'results' / 'bench_x_cpu.md').read_text() == '# bench x\n'
    assert f'wrote {stem}.json and {stem}.md' in capsys.readouterr().out

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

"""scripts/run_tests.sh: the whole suite on Kilted, the ROS tier again on Jazzy, no failure lost.

The script runs here with stand-ins for setup_env.sh and in_netns.sh that record their calls and
answer with chosen exit codes, so its logic is tested without building venvs or running pytest.
"""

import os
from pathlib import Path
import shutil
import subprocess

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SETUP_STUB = (
    '#!/usr/bin/env bash\n'
    'echo "setup ${ROS_DISTRO:-unset}${SPA3R_VENV:+ venv=$SPA3R_VENV}" >> "$STUB_LOG"\n'
)
# Exit code per venv: STUB_RC_KILTED for .venv, STUB_RC_JAZZY for .venv-jazzy.
NETNS_STUB = """#!/usr/bin/env bash
echo "run $*" >> "$STUB_LOG"
case "$1" in
  .venv/*) exit "${STUB_RC_KILTED:-0}" ;;
  .venv-jazzy/*) exit "${STUB_RC_JAZZY:-0}" ;;
esac
exit 99
"""


@pytest.fixture
def run_script(tmp_path):
    scripts = tmp_path / 'scripts'
    scripts.mkdir()
    shutil.copy(REPO_ROOT / 'scripts' / 'run_tests.sh', scripts / 'run_tests.sh')
    for name, text in (('setup_env.sh', SETUP_STUB), ('in_netns.sh', NETNS_STUB)):
        (scripts / name).write_text(text)
        (scripts / name).chmod(0o755)
    log = tmp_path / 'calls.log'

    def run(*args: str, **env: str) -> tuple[int, list[str], str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(('STUB_', 'SPA3R_'))}
        full_env.update(STUB_LOG=str(log), **env)
        log.write_text('')
        result = subprocess.run(
            ['bash', str(scripts / 'run_tests.sh'), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.returncode, log.read_text().splitlines(), result.stdout + result.stderr

    return run


def test_whole_suite_on_kilted_then_the_ros_tier_on_jazzy(run_script):
    rc, calls, out = run_script()
    assert rc == 0, out
    assert calls == [
        'setup kilted',
        'setup jazzy',
        'run .venv/bin/python -m pytest',
        'run .venv-jazzy/bin/python -m pytest -m ros',
    ]
    assert 'ROS 2 kilted: the whole suite' in out
    assert 'ROS 2 jazzy: the ROS tier' in out


def test_arguments_go_to_every_run(run_script):
    rc, calls, _ = run_script('test/ros/test_play.py', '-x')
    assert rc == 0
    assert calls[2:] == [
        'run .venv/bin/python -m pytest test/ros/test_play.py -x',
        'run .venv-jazzy/bin/python -m pytest -m ros test/ros/test_play.py -x',
    ]


@pytest.mark.parametrize(
    ('kilted', 'jazzy', 'expected'), [('1', '0', 1), ('0', '1', 1), ('2', '1', 2)]
)
def test_a_failure_on_either_distribution_fails_the_run_and_both_run(
    run_script, kilted, jazzy, expected
):
    rc, calls, out = run_script(STUB_RC_KILTED=kilted, STUB_RC_JAZZY=jazzy)
    assert rc == expected, out
    assert len([c for c in calls if c.startswith('run ')]) == 2


def test_no_ros_test_selected_is_only_fine_when_arguments_chose_that(run_script):
    # pytest exits 5 when it collects nothing: with test/unit that is expected on Jazzy ...
    rc, _, out = run_script('test/unit', STUB_RC_JAZZY='5')
    assert rc == 0, out
    assert 'select no ROS test' in out
    # ... but the full run must find the ROS tier on Jazzy.
    rc, _, _ = run_script(STUB_RC_JAZZY='5')
    assert rc == 5


def test_distributions_can_be_narrowed_to_kilted(run_script):
    rc, calls, _ = run_script(SPA3R_ROS_DISTROS='kilted')
    assert rc == 0
    assert calls == ['setup kilted', 'run .venv/bin/python -m pytest']


def test_an_exported_scratch_venv_does_not_reach_the_set_up(run_script):
    # SPA3R_VENV would send both distributions into one venv; the runs use .venv and .venv-jazzy.
    rc, calls, out = run_script(SPA3R_VENV='/tmp/scratch-venv')
    assert rc == 0, out
    assert calls[:2] == ['setup kilted', 'setup jazzy']


def test_kilted_must_come_first(run_script):
    rc, calls, out = run_script(SPA3R_ROS_DISTROS='jazzy')
    assert rc == 2 and calls == [], out


@pytest.mark.parametrize('distro', ['humble', 'rolling', 'Jazzy'])
def test_setup_refuses_a_distribution_without_wheels(tmp_path, distro):
    # A copy in an empty tree: had it gone on, it would only have built under tmp_path.
    (tmp_path / 'scripts').mkdir()
    script = shutil.copy(REPO_ROOT / 'scripts' / 'setup_env.sh', tmp_path / 'scripts')
    env = {**os.environ, 'ROS_DISTRO': distro, 'PYTHON': 'false'}
    result = subprocess.run(['bash', script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f'ROS_DISTRO={distro} has no wheels here' in result.stderr
    assert not (tmp_path / '.venv').exists() and not (tmp_path / '.venv-jazzy').exists()

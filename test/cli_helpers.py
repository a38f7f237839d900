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

"""Running ``spa3r`` commands as a user does: a separate process, exit status and output captured.

Imported by the tests as ``spa3r_test_cli`` (registered in ``test/conftest.py``).
"""

from pathlib import Path
import subprocess
import sys

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_spa3r(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``spa3r ARGS`` and wait for it; ``args`` may be paths or numbers (passed as text).

    It runs ``python -m spa3r_ros.cli.main`` of this interpreter from the repository root, so the
    source tree under test is what runs, not whatever ``spa3r`` console script is installed.

    Returns:
        the finished process: ``returncode``, ``stdout`` and ``stderr`` as text.
    """
    return subprocess.run(
        [sys.executable, '-m', 'spa3r_ros.cli.main', *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

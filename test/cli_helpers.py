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

import os
from pathlib import Path
import socket
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a torchrun rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_torchrun(
    script: Path, *args: object, nproc: int = 2, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Run ``script ARGS`` on ``nproc`` CPU ranks under torchrun, rendezvous on 127.0.0.1.

    One thread per rank (the machine's cores are shared between them); the source tree under test
    is on ``PYTHONPATH``. Returns the finished launcher process (output captured as text).
    """
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1')
    command = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', str(nproc),
        '--master-addr', '127.0.0.1', '--master-port', str(free_port()),
        str(script), *map(str, args),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )

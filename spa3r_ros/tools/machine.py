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

"""What a benchmark or soak result was measured on: machine, software and the code's commit.

:func:`machine_info` is recorded beside every result in ``benchmarks/results``, so a result can be
matched with the code it measured (``git_commit`` and ``git_dirty``: uncommitted changes to
tracked files at the time) and with the load the machine was under.
"""

from datetime import datetime, timezone
import json
import os
from pathlib import Path
import platform
import subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]


def cpu_model_name() -> str:
    """The CPU model string from /proc/cpuinfo (or platform as a fallback)."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str, repo: Path) -> str | None:
    try:
        result = subprocess.run(
            ['git', '-C', str(repo), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(repo: Path = REPO_ROOT) -> dict:
    """``{'git_commit': sha or None, 'git_dirty': bool or None}`` of the source tree at ``repo``.

    ``git_dirty`` is True when tracked files differ from the commit (untracked files do not
    count, nor do the results in ``benchmarks/results``: one benchmark run after another must not
    call the code dirty because the first wrote its results); both are None outside a git checkout
    (e.g. an installed package).
    """
    commit = _git('rev-parse', 'HEAD', repo=repo)
    if commit is None:
        return {'git_commit': None, 'git_dirty': None}
    code = ('--', '.', ':!benchmarks/results')
    status = _git('status', '--porcelain', '--untracked-files=no', *code, repo=repo)
    return {'git_commit': commit, 'git_dirty': bool(status) if status is not None else None}


def machine_info(device: str, repo: Path = REPO_ROOT) -> dict:
    """Describe the machine, the software and the code the numbers were taken with.

    Args:
        device: ``'cpu'`` or ``'cuda'`` (then the GPU's name, CUDA version and autocast dtype).
        repo: the source tree whose commit is recorded.
    """
    import torch

    info = {
        'cpu_model': cpu_model_name(),
        'cpu_cores': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'torch_version': torch.__version__,
        'python_version': platform.python_version(),
        'platform': platform.platform(),
        'device': device,
        **git_state(repo),
        # Other processes share the cores on busy machines; the load average says how much.
        'load_average_1m_5m_15m': [round(x, 2) for x in os.getloadavg()],
        'date_utc': datetime.now(timezone.utc).isoformat(timespec='seconds'),
    }
    if device == 'cuda':
        info['gpu_name'] = torch.cuda.get_device_name()
        info['cuda_version'] = torch.version.cuda
        info['autocast_dtype'] = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    return info


def write_result(stem: Path, info: dict, rows: list[dict], markdown: str) -> None:
    """Write a benchmark result as ``STEM.json`` (``{'machine', 'rows'}``) and ``STEM.md``.

    Args:
        stem: the result's path without suffix (its folder is made).
        info: :func:`machine_info` of the run.
        rows: the measured rows.
        markdown: the same result as a Markdown page.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix('.json').write_text(json.dumps({'machine': info, 'rows': rows}, indent=2))
    stem.with_suffix('.md').write_text(markdown)
    print(f'wrote {stem}.json and {stem}.md')

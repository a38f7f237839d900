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

"""Shared pytest set-up: offline by construction, seeded, and the paths every tier needs."""

import importlib.abc
import importlib.util
import os
from pathlib import Path
import sys

import pytest

# No test may reach a model hub; code paths that would try must fail loudly instead.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

REPO_ROOT = Path(__file__).resolve().parents[1]


class _HelperModules(importlib.abc.MetaPathFinder):
    """Makes the helper files of the test folders importable by name, loaded on first import.

    Test folders are not packages (``--import-mode=importlib``), so a test cannot import a helper
    beside it by file name; listed here once, every test file of the tree says ``import name``,
    and a session that imports none does not pay its imports (torch, the trainer).
    """

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname, path=None, target=None):
        file = self.files.get(fullname)
        return importlib.util.spec_from_file_location(fullname, file) if file else None


# The shared helper modules of the test folders (their docstrings say what they hold).
sys.meta_path.append(
    _HelperModules(
        {
            'spa3r_test_cli': REPO_ROOT / 'test' / 'cli_helpers.py',
            'spa3r_test_eval_helpers': REPO_ROOT / 'test' / 'evaluation' / 'eval_helpers.py',
            'spa3r_test_trainer_doubles': REPO_ROOT / 'test' / 'training' / 'trainer_doubles.py',
            'spa3r_test_tiny_vlm': REPO_ROOT / 'test' / 'fixtures' / 'tiny_vlm.py',
        }
    )
)


def pytest_report_header(config) -> str:
    """Name the ROS 2 distribution this run tests (scripts/run_tests.sh runs one per venv)."""
    import sys

    try:
        from spa3r_ros.ros.compat import describe
    except ImportError as err:  # the ROS tier fails loudly on its own; the header only reports
        return f'ROS 2: rclpy not importable ({err}); interpreter {sys.executable}'
    return f'{describe()}; interpreter {sys.executable}'


@pytest.fixture(scope='session')
def golden_dir() -> Path:
    """The shared golden vectors (``../shared/golden`` beside the checkout, or $SPA3R_GOLDEN_DIR).

    They are part of the workplace, not optional test data: a missing folder fails the test.
    """
    path = Path(os.environ.get('SPA3R_GOLDEN_DIR', REPO_ROOT.parent / 'shared' / 'golden'))
    if not (path / 'README.md').is_file():
        pytest.fail(f'golden vectors not found at {path} (set SPA3R_GOLDEN_DIR)')
    return path


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed numpy and, when a test has imported it, torch, so tests are deterministic."""
    import random
    import sys

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get('torch')  # importing torch costs seconds: only seed it when in use
    if torch is not None:
        torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run tiny models on one thread (when a test uses torch).

    On a shared 2-core machine a thread pool only adds contention (about 20x slower); the golden
    tolerances still hold (golden README: 1 vs 2 threads moves outputs by < 5e-7 relative).
    """
    import sys

    torch = sys.modules.get('torch')
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def tiny_models():
    """The tiny-random model bundle (seed 0), shared: nothing changes its weights."""
    from spa3r_ros.models.bundle import build_tiny_random

    return build_tiny_random(seed=0)

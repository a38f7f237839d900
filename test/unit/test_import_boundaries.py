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


"""The core library imports without rclpy (and configs/core without torch)."""

import subprocess
import sys

import pytest

ROS_FREE = [
    'spa3r_ros',
    'spa3r_ros.configs.node',
    'spa3r_ros.configs.scene',
    'spa3r_ros.configs.flatten',
    'spa3r_ros.core.types',
    'spa3r_ros.core.image_decode',
    'spa3r_ros.core.frame_buffer',
    'spa3r_ros.core.requests',
    'spa3r_ros.cli.dump_params',
    'spa3r_ros.cli.main',
    'spa3r_ros.scene.keyframes',
    'spa3r_ros.scene.odometry',
]

# The rest of the core library needs torch but never rclpy: the offline tools and training run on
# machines without ROS.
TORCH_ONLY = [
    'spa3r_ros.scene.engine',
    'spa3r_ros.models.bundle',
    'spa3r_ros.tools.golden',
]


@pytest.mark.parametrize('module', ROS_FREE)
def test_imports_with_rclpy_and_torch_blocked(module):
    code = (
        'import sys\n'
        "for name in ('rclpy', 'torch', 'transformers'):\n"
        '    sys.modules[name] = None\n'
        f'import {module}\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize('module', TORCH_ONLY)
def test_imports_with_rclpy_blocked(module):
    code = f"import sys; sys.modules['rclpy'] = None; import {module}"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_blocking_works():
    """The harness really blocks: importing the ROS layer must fail with rclpy blocked."""
    code = "import sys; sys.modules['rclpy'] = None; import spa3r_ros.ros.node"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode != 0

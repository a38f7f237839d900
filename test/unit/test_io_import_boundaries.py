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

"""The image, buffer and bag modules import with rclpy and torch blocked (house style 5.1)."""

from pathlib import Path
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
for name in ('rclpy', 'torch', 'cv2', 'sensor_msgs', 'av'):
    sys.modules[name] = None  # any import of these now raises ImportError
import importlib
importlib.import_module({module!r})
print(' '.join(sorted(m for m in ('rosbags', 'PIL') if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ('module', 'allowed'),
    [
        ('spa3r_ros.core.image_decode', set()),  # Pillow only when a compressed image arrives
        ('spa3r_ros.core.frame_buffer', set()),
        ('spa3r_ros.data', set()),
        ('spa3r_ros.data.rosbag_io', {'rosbags'}),  # reading needs no Pillow
        ('spa3r_ros.data.bag_writer', {'rosbags'}),
        ('spa3r_ros.data.demo_scene', {'rosbags', 'PIL'}),
        ('spa3r_ros.data.image_bag', {'rosbags', 'PIL'}),  # PyAV only when a video is read
        ('spa3r_ros.data.rgbd_stream', {'rosbags'}),
        ('spa3r_ros.data.qa.depth_pose', {'rosbags'}),
        ('spa3r_ros.data.qa.annotations', set()),  # numpy only
        ('spa3r_ros.data.qa.generate', set()),  # the bag reader only when a bag is given
        ('spa3r_ros.cli.qa', set()),
        ('spa3r_ros.data.world.render', set()),  # the ray caster is numpy only
        ('spa3r_ros.data.world.generate', {'rosbags'}),
    ],
)
def test_imports_without_ros_or_torch(module: str, allowed: set[str]) -> None:
    result = subprocess.run(
        [sys.executable, '-c', PROGRAM.format(module=module)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == allowed

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


"""Every absolute stamp of the project becomes the same float, whichever path it takes."""

from pathlib import Path
import random
from types import SimpleNamespace

from builtin_interfaces.msg import Time
import pytest

from spa3r_ros.core.stamps import ns_to_sec, stamp_to_sec
from spa3r_ros.data.bag_stream import header_stamp
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.data.world.generate import BAG_DIR, TOPICS, WorldOptions, write_world_scene
from spa3r_ros.ros.conversions import time_to_sec


def _stamps() -> list[int]:
    rng = random.Random(0)
    base = 1_704_067_200 * 10**9  # 2024, where a float second has ~0.24 us resolution
    frames = [base + round(i * 1e9 / rate) for rate in (10.0, 15.0, 30.0) for i in range(300)]
    return frames + [rng.randrange(0, 2**31 * 10**9) for _ in range(2000)]


def test_ns_sec_nanosec_and_the_node_agree_to_the_bit():
    for ns in _stamps():
        sec, nanosec = divmod(ns, 10**9)
        expected = ns_to_sec(ns)
        assert stamp_to_sec(sec, nanosec) == expected
        assert time_to_sec(Time(sec=sec, nanosec=nanosec)) == expected
        message = SimpleNamespace(header=SimpleNamespace(stamp=Time(sec=sec, nanosec=nanosec)))
        assert header_stamp(message, 0.0) == expected


def test_the_product_shortcut_is_off_for_many_frame_stamps():
    # Why one conversion: ``ns * 1e-9`` disagrees with the exact quotient by one unit in the last
    # place for a large share of frame stamps, so a question asked "at a frame's time" could
    # miss its frame (the node's exact stamp would be smaller than the question's).
    stamps = _stamps()[:900]
    off = sum(ns * 1e-9 != ns_to_sec(ns) for ns in stamps)
    assert off > 100
    assert all(ns_to_sec(ns) == pytest.approx(ns * 1e-9, abs=1e-6) for ns in stamps)


def test_scene_json_frame_stamps_are_the_bag_header_stamps_exactly(tmp_path: Path):
    spec = write_world_scene(
        tmp_path / 'scene', 3, WorldOptions(width=16, height=12, frames=12, rate_hz=15.0)
    )
    with BagReader(tmp_path / 'scene' / BAG_DIR) as bag:
        headers = [header_stamp(m.msg, 0.0) for m in bag.messages(topics=[TOPICS['rgb']])]
    assert headers == [frame.stamp for frame in spec.frames]

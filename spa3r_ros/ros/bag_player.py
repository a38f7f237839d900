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


"""Publish a rosbag2 recording (sqlite3 or mcap) into ROS, for machines without ``ros2 bag``.

Messages are read with ``rosbags`` and published as their recorded CDR bytes (rclpy publishes
serialized data unchanged), so any message type whose Python module is installed can be replayed.
"""

import importlib
import time

from rclpy.node import Node

from spa3r_ros.data.rosbag_io import BagReader


def message_class(msgtype: str):
    """``sensor_msgs/msg/Image`` -> the rclpy message class."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def play_bag(
    node: Node,
    bag_path: str,
    *,
    topics: list[str] | None = None,
    rate: float = 1.0,
    wait_for_subscribers: float = 10.0,
    on_message=None,
) -> int:
    """Publish the bag's messages at ``rate`` x recorded speed (0: as fast as possible).

    Args:
        node: the node that owns the publishers.
        bag_path: the bag folder (or file).
        topics: topics to play (default: every topic whose type rclpy can import).
        rate: speed factor; 0 publishes without pauses.
        wait_for_subscribers: seconds to wait until every publisher has a subscriber or until
            none comes (topics nobody listens to are still published).
        on_message: called with each BagMessage after it is published.

    Returns:
        The number of messages published.

    Raises:
        DatasetError: if the bag cannot be read or a topic is missing (names the bag's topics).
    """
    with BagReader(bag_path) as reader:
        available = reader.topics()
        chosen = topics or [t for t, (msgtype, _) in available.items() if _importable(msgtype)]
        publishers = {
            topic: node.create_publisher(message_class(available[topic][0]), topic, 100)
            for topic in chosen
            if topic in available
        }
        deadline = time.monotonic() + wait_for_subscribers
        while time.monotonic() < deadline and any(
            p.get_subscription_count() == 0 for p in publishers.values()
        ):
            time.sleep(0.05)
        count, first_stamp, start = 0, None, time.monotonic()
        for message in reader.messages(chosen, deserialize=False):
            if first_stamp is None:
                first_stamp = message.stamp_ns
            if rate > 0:
                due = start + (message.stamp_ns - first_stamp) * 1e-9 / rate
                time.sleep(max(0.0, due - time.monotonic()))
            publishers[message.topic].publish(bytes(message.rawdata))
            count += 1
            if on_message is not None:
                on_message(message)
        return count


def _importable(msgtype: str) -> bool:
    try:
        message_class(msgtype)
    except (ImportError, AttributeError, ValueError):
        return False
    return True

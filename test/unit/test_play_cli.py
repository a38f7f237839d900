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


"""``spa3r play`` without ROS: argument parsing, and the bag reader's latched-topic detection.

The playing itself is tested across processes in test/ros/test_play.py.
"""

import subprocess
import sys

import pytest
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from spa3r_ros.cli.main import COMMANDS
from spa3r_ros.cli.play import build_parser, main
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.rosbag_io import BagReader


def parse(*args: str):
    return build_parser().parse_args(['bag', *args])


def test_defaults_play_everything_once_at_recorded_rate_with_clock():
    args = parse()
    assert (args.rate, args.max_speed, args.clock, args.loop) == (1.0, False, True, False)
    assert args.topics is None and args.remap == [] and args.start_offset == 0.0
    assert args.wait_for_subscribers == 0.0 and args.clock_hz == 100.0


def test_options_parse():
    args = parse(
        '--rate', '2.5', '--topics', '/a', '/b', '--no-clock', '--loop', '--start-offset', '1.5',
        '--remap', '/a:=/x', '/b:=c/d', '--remap', '/e:=/f', '--wait-for-subscribers', '3',
    )  # fmt: skip
    assert args.rate == 2.5 and args.topics == ['/a', '/b'] and not args.clock and args.loop
    assert args.start_offset == 1.5 and args.wait_for_subscribers == 3.0
    assert args.remap == [('/a', '/x'), ('/b', 'c/d'), ('/e', '/f')]
    assert parse('--max-speed').max_speed


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--rate', '0'], 'expected a number > 0'),
        (['--rate', 'fast'], "expected a number > 0, got 'fast'"),
        (['--rate', 'inf'], "expected a number > 0, got 'inf'"),
        (['--rate', '2', '--max-speed'], 'not allowed with argument'),
        (['--start-offset', '-1'], 'expected a number >= 0'),
        (['--wait-for-subscribers', 'nan'], 'expected a number >= 0'),
        (['--remap', '/a=/b'], "expected OLD:=NEW, got '/a=/b'"),
        (['--remap', ':=/b'], 'expected OLD:=NEW'),
        (['--queue-depth', '0'], 'expected an integer >= 1'),
        (['--queue-depth', '9' * 5000], 'expected an integer >= 1, got 5000 characters'),
        # Remap targets and topics ROS would refuse (rclpy raised from create_publisher).
        (['--remap', '/a:=/b c'], "'/b c' is not a valid ROS 2 topic name"),
        (['--remap', '/a:=/1b'], "'/1b' is not a valid ROS 2 topic name"),
        (['--remap', '/a:=/b//c'], "'/b//c' is not a valid ROS 2 topic name"),
        (['--remap', '/a:=/b/'], "'/b/' is not a valid ROS 2 topic name"),
        (['--remap', '/a:=/{node}'], "'/{node}' is not a valid ROS 2 topic name"),
        (['--remap', '/a-b:=/c'], "'/a-b' is not a valid ROS 2 topic name"),
        (['--remap', '/a:=/' + 'x' * 300], 'topic name of 301 characters'),
        (['--topics', '/ok', 'bad topic'], "'bad topic' is not a valid ROS 2 topic name"),
        (['--wait-topics', '/a//b'], "'/a//b' is not a valid ROS 2 topic name"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['bag', *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_without_ros_the_cli_says_so_instead_of_a_traceback():
    code = (
        'import sys\n'
        "sys.modules['rclpy'] = None\n"
        'from spa3r_ros.cli.play import main\n'
        "sys.exit(main(['bag']))\n"
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert 'needs ROS 2 (rclpy)' in result.stderr
    assert 'Traceback' not in result.stderr


def test_play_is_a_spa3r_command():
    module, help_text = COMMANDS['play']
    assert module == 'spa3r_ros.cli.play' and 'rosbag2' in help_text


def test_latched_topics_come_from_the_recorded_qos(tmp_path):
    store = get_typestore(Stores.ROS2_KILTED)
    zero = QosTime(sec=0, nsec=0)

    def qos(durability: QosDurability) -> Qos:
        return Qos(
            QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, durability, zero, zero,
            QosLiveliness.AUTOMATIC, zero, False,
        )  # fmt: skip

    path = tmp_path / 'qos_bag'
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    try:
        for topic, durability in (
            ('/tf_static', QosDurability.TRANSIENT_LOCAL),
            ('/chatter', QosDurability.VOLATILE),
        ):
            conn = writer.add_connection(
                topic,
                'std_msgs/msg/String',
                typestore=store,
                offered_qos_profiles=[qos(durability)],
            )
            message = store.types['std_msgs/msg/String'](data='hi')
            writer.write(conn, 1, store.serialize_cdr(message, 'std_msgs/msg/String'))
    finally:
        writer.close()
    with BagReader(path) as bag:
        assert bag.latched_topics() == frozenset({'/tf_static'})
    with BagReader(write_demo_bag(tmp_path / 'demo', num_frames=1)) as bag:
        assert bag.latched_topics() == frozenset()

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

"""Replay a recorded bag into spa3r_node: the node on bag time (use_sim_time) plus a bag player.

ros2 launch spa3r_ros spa3r_replay.launch.py bag:=/data/run1 image_topic:=/camera/color/image_raw
ros2 launch spa3r_ros spa3r_replay.launch.py bag:=/data/run1 player:=spa3r rate:=2.0

The player is ``ros2 bag play BAG --clock 100`` by default; ``player:=spa3r`` runs ``spa3r play``
instead (for machines that have rclpy but no rosbag2). Both publish /clock in bag time, and both
start after ``start_delay`` seconds so the node's subscriptions exist before the first frame
(``spa3r play`` also waits for a subscriber on the bag's camera topics).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    IncludeLaunchDescription,
    TimerAction,
)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory('spa3r_ros')
    bag = LaunchConfiguration('bag')
    rate = LaunchConfiguration('rate')
    player = LaunchConfiguration('player')
    start_delay = LaunchConfiguration('start_delay')
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')

    declare_args = [
        DeclareLaunchArgument(
            'bag', description='Bag to replay: a rosbag2 folder, or a .mcap / .db3 file'
        ),
        DeclareLaunchArgument(
            'rate', default_value='1.0', description='Playback speed factor (1.0 = recorded)'
        ),
        DeclareLaunchArgument(
            'player',
            default_value='ros2',
            choices=['ros2', 'spa3r'],
            description='Bag player: ros2 (ros2 bag play) or spa3r (spa3r play, no rosbag2)',
        ),
        DeclareLaunchArgument(
            'start_delay',
            default_value='3.0',
            description='Seconds to wait before playing, so the node is subscribed',
        ),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the node and its topics'
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'spa3r.yaml'),
            description='ROS parameters file for spa3r_node',
        ),
        DeclareLaunchArgument(
            'image_topic',
            default_value='/camera/image_raw',
            description='The bag camera topic (sensor_msgs/Image) the node reads',
        ),
    ]

    spa3r_node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'spa3r.launch.py')),
        launch_arguments={
            'namespace': namespace,
            'params_file': params_file,
            'image_topic': image_topic,
            'use_sim_time': 'true',
        }.items(),
    )

    ros2_bag_play = ExecuteProcess(
        cmd=['ros2', 'bag', 'play', bag, '--clock', '100', '--rate', rate],
        output='screen',
        condition=IfCondition(EqualsSubstitution(player, 'ros2')),
    )
    # `spa3r` is installed next to spa3r_node (lib/spa3r_ros); launch_ros appends --ros-args,
    # which `spa3r play` hands to rclpy.
    spa3r_play = Node(
        package='spa3r_ros',
        executable='spa3r',
        name='spa3r_player',
        arguments=['play', bag, '--rate', rate, '--clock', '--wait-for-subscribers', '30'],
        output='screen',
        condition=IfCondition(EqualsSubstitution(player, 'spa3r')),
    )

    return LaunchDescription(
        [
            *declare_args,
            spa3r_node,
            TimerAction(period=start_delay, actions=[ros2_bag_play, spa3r_play]),
        ]
    )

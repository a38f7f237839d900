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

"""Launch spa3r_node (a lifecycle node) and, with autostart, configure and activate it.

ros2 launch spa3r_ros spa3r.launch.py namespace:=robot1 image_topic:=/camera/color/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    share = get_package_share_directory('spa3r_ros')
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')
    compressed_image_topic = LaunchConfiguration('compressed_image_topic')
    autostart = LaunchConfiguration('autostart')
    log_level = LaunchConfiguration('log_level')
    use_sim_time = LaunchConfiguration('use_sim_time')

    declare_args = [
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
            default_value='image_raw',
            description='Camera topic (sensor_msgs/Image) that the node input image_raw reads',
        ),
        DeclareLaunchArgument(
            'compressed_image_topic',
            default_value='image_raw/compressed',
            description='Camera topic (sensor_msgs/CompressedImage) for image_raw/compressed',
        ),
        DeclareLaunchArgument(
            'autostart',
            default_value='true',
            description='Configure and activate the lifecycle node after start-up',
        ),
        DeclareLaunchArgument(
            'log_level', default_value='info', description='Log level (debug, info, warn, error)'
        ),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='Use /clock (bag replay)'
        ),
    ]

    node = LifecycleNode(
        package='spa3r_ros',
        executable='spa3r_node',
        name='spa3r_node',
        namespace=namespace,
        parameters=[params_file, {'use_sim_time': use_sim_time, 'autostart': False}],
        remappings=[
            ('image_raw', image_topic),
            ('image_raw/compressed', compressed_image_topic),
        ],
        arguments=['--ros-args', '--log-level', log_level],
        output='screen',
    )

    # The launch file drives the transitions (the node's own autostart is off here, so the two
    # never race): configure at start, activate once configure has taken the node to 'inactive'.
    # start_state 'configuring' (as navigation2's lifecycle launch does) keeps the handler from
    # firing after a failed activate (which would retry forever) or a manual deactivate (which
    # would re-activate the node behind its operator's back).
    configure = EmitEvent(
        event=ChangeState(
            lifecycle_node_matcher=matches_action(node),
            transition_id=Transition.TRANSITION_CONFIGURE,
        ),
        condition=IfCondition(autostart),
    )
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state='configuring',
            goal_state='inactive',
            entities=[
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(node),
                        transition_id=Transition.TRANSITION_ACTIVATE,
                    )
                )
            ],
        ),
        condition=IfCondition(autostart),
    )

    return LaunchDescription(
        [
            SetEnvironmentVariable('RCUTILS_LOGGING_BUFFERED_STREAM', '1'),
            *declare_args,
            node,
            activate_when_configured,
            configure,
        ]
    )

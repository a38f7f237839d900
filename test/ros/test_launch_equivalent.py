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


"""The processes that launch/spa3r.launch.py declares, started as launch_ros would start them.

The command line is the one launch_ros builds for the LifecycleNode (namespace, node name, the
params file plus the inline parameters, remappings, log level); the test then emits the lifecycle
transitions that the launch file's autostart emits (configure, then activate on 'inactive') and
checks behaviour: frames on the remapped topic are counted in the namespaced status.
What this does not cover: launch itself (see test/unit/test_launch_static.py).
"""

import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
import yaml

from spa3r_ros.ros.processes import ManagedProcess, REPO_ROOT, ros_child_env

pytestmark = pytest.mark.ros


def call(executor, client, request, timeout=20.0):
    assert client.wait_for_service(timeout_sec=timeout), client.srv_name
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=timeout)
    assert future.done(), f'{client.srv_name} did not answer'
    return future.result()


def test_launch_equivalent_processes(tmp_path, domain_id, ros_context, run_publisher):
    from spa3r_ros.msg import SceneStatus  # noqa: PLC0415 (after the context exists)

    inline = tmp_path / 'inline_params.yaml'
    inline.write_text(
        yaml.safe_dump(
            {
                '/**': {
                    'ros__parameters': {
                        'use_sim_time': False,
                        'autostart': False,
                        # Every frame is counted below: reliable delivery (overrides are keyed by
                        # the remapped topic name).
                        'qos_overrides': {
                            '/robot1/camera/color/image_raw': {
                                'subscription': {'reliability': 'reliable'}
                            }
                        },
                    }
                }
            }
        )
    )
    args = [
        '-m', 'spa3r_ros.ros.node',
        '--ros-args', '--log-level', 'info',
        '--ros-args', '-r', '__node:=spa3r_node', '-r', '__ns:=/robot1',
        '--params-file', str(REPO_ROOT / 'config' / 'spa3r.yaml'),
        '--params-file', str(inline),
        '-r', 'image_raw:=/robot1/camera/color/image_raw',
        '-r', 'image_raw/compressed:=/robot1/camera/color/image_raw/compressed',
    ]  # fmt: skip
    with ManagedProcess(args, tmp_path / 'node.log', ros_child_env(domain_id)) as node_proc:
        node = rclpy.create_node('launch_driver', context=ros_context)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        try:
            change = node.create_client(ChangeState, '/robot1/spa3r_node/change_state')
            get = node.create_client(GetState, '/robot1/spa3r_node/get_state')
            assert call(executor, get, GetState.Request()).current_state.label == 'unconfigured'
            for transition, state in (
                (Transition.TRANSITION_CONFIGURE, 'inactive'),
                (Transition.TRANSITION_ACTIVATE, 'active'),
            ):
                req = ChangeState.Request(transition=Transition(id=transition))
                assert call(executor, change, req).success, node_proc.output()
                assert call(executor, get, GetState.Request()).current_state.label == state

            received = []
            node.create_subscription(SceneStatus, '/robot1/scene_status', received.append, 10)
            run_publisher('--topic', '/robot1/camera/color/image_raw', '--count', '4')
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                if received and received[-1].frames_received == 4:
                    break
            assert received and received[-1].frames_received == 4, node_proc.output()
            assert received[-1].frames_dropped == 0
        finally:
            node.destroy_node()
        assert node_proc.stop() == 0
    assert "listening on ['/robot1/camera/color/image_raw'" in node_proc.output()

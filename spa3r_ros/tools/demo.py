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


"""The main job, end to end: a recorded bag -> spa3r_node -> a planner's questions -> answers.

The command is ``spa3r demo`` (:mod:`spa3r_ros.cli.demo`, which makes sure it runs in a private
network namespace; ``scripts/run_demo.sh`` does set-up first). :func:`run_demo` writes a small
synthetic bag (a camera moving past coloured boxes), starts spa3r_node as its own process, replays
the bag into it, asks a few questions through the SpatialQuery action as a planner would, and
prints what happened. It uses the best model preset this machine can run and says which:
``official`` when its weights are in the local Hugging Face cache and a GPU is there, else
``tiny-random``, whose random weights make every answer meaningless (the run shows the pipeline,
not the model's skill).

rclpy is imported inside :func:`run_demo` only, so this module imports on machines without ROS.
"""

from dataclasses import replace
import os
from pathlib import Path
import time

from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.ros.processes import (
    in_private_network,
    localhost_discovery_env,
    ManagedProcess,
    network_interfaces,
    ros_child_env,
)

QUESTIONS = [
    SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('box',)),
    SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('red box', 'blue box')),
    SpatialQueryRequest(
        task=Task.REL_DISTANCE, objects=('camera',), options=('red box', 'green box', 'blue box')
    ),
    SpatialQueryRequest(question='What is in front of the robot?'),
    SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('sofa',)),  # malformed on purpose
]


def best_preset() -> str:
    """The best model preset this machine can run (see the module docstring)."""
    import torch

    from spa3r_ros.core.errors import CheckpointError
    from spa3r_ros.models.bundle import load_registry
    from spa3r_ros.models.vlm.checkpoint import resolve_checkpoint_dir

    official = load_registry().get('official', {})
    if torch.cuda.is_available() and official.get('vlm'):
        try:
            resolve_checkpoint_dir(official['vlm'], local_files_only=True)
            return 'official'
        except CheckpointError:
            pass
    return 'tiny-random'


def run_demo(workdir: Path, *, frames: int = 30, storage: str = 'mcap') -> int:
    """Run the demo with its files in ``workdir``; returns the exit status (0: as expected).

    Raises:
        RuntimeError: this process is not in a private network namespace (checked before any ROS
            context exists; :mod:`spa3r_ros.cli.demo` re-enters ``scripts/in_netns.sh`` first).
    """
    if not in_private_network():
        raise RuntimeError(
            'the demo runs ROS processes only in a private network namespace with loopback only '
            f'(this one has {", ".join(network_interfaces())}); use spa3r demo or '
            'scripts/run_demo.sh'
        )
    # This process takes part in discovery too (the player and the client): localhost only, with
    # no inherited peers or profiles, like the node it starts.
    localhost_discovery_env(os.environ)
    import domain_coordinator
    import rclpy
    from rclpy.context import Context

    from spa3r_ros.ros.bag_player import play_bag
    from spa3r_ros.ros.node import ACTIVE_MESSAGE
    from spa3r_ros.ros.query_client import SpatialQueryClient

    workdir.mkdir(parents=True, exist_ok=True)
    preset = best_preset()
    print('== spa3r_ros demo ==')
    print(f'model preset: {preset}')
    if preset == 'tiny-random':
        print(
            'Note: tiny-random has random weights, so its answers mean nothing; the run shows '
            'the pipeline (frames -> scene -> typed answers), not spatial skill. No trained '
            "preset's weights are on this machine."
        )

    bag = write_demo_bag(workdir / 'demo_bag', storage=storage, num_frames=frames)
    print(f'bag: {bag} ({frames} frames, {storage})')

    with domain_coordinator.domain_id() as domain:
        env = ros_child_env(domain)
        node_args = [
            '-m', 'spa3r_ros.ros.node', '--ros-args',
            '-p', 'autostart:=true', '-p', f'model.preset:={preset!r}',
            '-p', 'inputs.image_topics:=[/camera/image_raw]', '-p', 'inputs.odom_topic:=/odom',
            '-p', 'status.rate_hz:=2.0',
        ]  # fmt: skip
        with ManagedProcess(node_args, workdir / 'node.log', env) as node:
            if not node.wait_for_output(ACTIVE_MESSAGE, 30):
                print(node.output())
                print('the node did not become active')
                return 1
            print(f'node: active on ROS domain {domain} (log: {workdir / "node.log"})')
            context = Context()
            rclpy.init(context=context, domain_id=domain)
            try:
                player = rclpy.create_node('spa3r_demo_player', context=context)
                start = time.monotonic()
                sent = play_bag(player, str(bag), topics=['/camera/image_raw', '/odom'], rate=2.0)
                took = time.monotonic() - start
                print(f'replayed {sent} messages (frames and odometry) at 2x in {took:.1f} s')
                player.destroy_node()
                client = SpatialQueryClient(context)
                try:
                    if not client.wait_for_server(30):
                        print('no action server')
                        return 1
                    failures = 0
                    # The first question waits for a scene that holds the bag's last frame
                    # (min_stamp); the others use whatever scene is current, as planners do.
                    with BagReader(bag) as reader:
                        last_stamp = (reader.end_ns - 1) * 1e-9
                    questions = [replace(QUESTIONS[0], min_stamp=last_stamp), *QUESTIONS[1:]]
                    for request in questions:
                        outcome = client.ask(request, timeout=120)
                        result = outcome.result
                        code = ResultCode(result.code).name
                        label = request.question or f'{request.task.name} {list(request.objects)}'
                        print(f'- {label}\n    -> {code}: {result.answer or result.message}')
                        if result.code == ResultCode.OK:
                            print(
                                f'       value={result.value} {result.unit} '
                                f'choice={result.choice!r} scene v{result.scene_version} '
                                f'({result.num_frames} keyframes)'
                            )
                        # The last question is malformed on purpose: INVALID_GOAL is right.
                        expected = (
                            ResultCode.INVALID_GOAL if request is questions[-1] else ResultCode.OK
                        )
                        failures += result.code != expected
                finally:
                    client.close()
            finally:
                context.try_shutdown()
            rc = node.stop()
        log = node.output()
    received = [line for line in log.splitlines() if 'goal finished' in line]
    print(f'node exited with {rc}; it logged {len(received)} finished goals')
    print(f'files kept in {workdir}')
    return 0 if rc == 0 and failures == 0 else 1

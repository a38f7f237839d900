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
network namespace; ``scripts/run_demo.sh`` does set-up first). :func:`run_demo` generates one
``spa3r world`` scene from a held-out seed (:data:`DEMO_SCENE_SEED`, never a training seed) and
its questions with exact answers (``spa3r qa``), starts spa3r_node as its own process, replays the
scene's bag into it and, when the bag reaches each question's time, asks it through the
SpatialQuery action as a planner would. Each answer is printed beside the ground truth with its
score (strict and lenient, as ``spa3r eval`` scores), then the mean; a malformed goal at the end
shows the refusal. It uses the best model preset this machine can run and says what it is:
``official`` when its weights are in the local Hugging Face cache and a GPU is there, else
``synthetic-small`` (the small model this project trained on synthetic rooms, committed under
``models/``), else ``tiny-random``, whose random weights make every answer meaningless.

rclpy is imported inside :func:`run_demo` only, so this module imports on machines without ROS.
"""

import json
import os
from pathlib import Path
import re
import time

from spa3r_ros.core.prompts import build_prompt
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.ros.processes import (
    in_private_network,
    localhost_discovery_env,
    ManagedProcess,
    network_interfaces,
    ros_child_env,
)

# The demo scene's seed. Seeds from 1,000,000 up are held out: training recipes use lower ones.
DEMO_SCENE_SEED = 1_000_000
# Questions per family (one each keeps the run short; every family the scene allows is asked).
DEMO_QUESTIONS_PER_FAMILY = 1
# Asked last: malformed on purpose (ABS_DISTANCE needs two objects), so INVALID_GOAL is right.
MALFORMED = SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('sofa',))


# The project's own trained preset (scripts/train_synthetic.sh; models/synthetic-small/).
TRAINED_PRESET = 'synthetic-small'


def best_preset() -> str:
    """The best model preset this machine can run (see the module docstring)."""
    import torch

    from spa3r_ros.core.errors import CheckpointError
    from spa3r_ros.models.bundle import load_registry, trained_preset_folder
    from spa3r_ros.models.vlm.checkpoint import resolve_checkpoint_dir

    registry = load_registry()
    official = registry.get('official', {})
    if torch.cuda.is_available() and official.get('vlm'):
        try:
            resolve_checkpoint_dir(official['vlm'], local_files_only=True)
            return 'official'
        except CheckpointError:
            pass
    if TRAINED_PRESET in registry:
        try:
            trained_preset_folder(TRAINED_PRESET, registry[TRAINED_PRESET])
            return TRAINED_PRESET
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

    from spa3r_ros.data.qa.generate import generate_qa
    from spa3r_ros.data.qa.records import parse_qa_line, write_qa
    from spa3r_ros.data.world.generate import BAG_DIR, TOPICS, WorldOptions, write_world_scene
    from spa3r_ros.evaluation.evaluate import score_answer
    from spa3r_ros.ros.bag_player import play_bag
    from spa3r_ros.ros.node import ACTIVE_MESSAGE
    from spa3r_ros.ros.query_client import SpatialQueryClient

    workdir.mkdir(parents=True, exist_ok=True)
    preset = best_preset()
    print('== spa3r_ros demo ==')
    print(f'model preset: {preset}')
    if preset == TRAINED_PRESET:
        print(
            f'Note: {preset} is a 1.5 M-parameter model this project trained on synthetic rooms '
            '(spa3r world) only, on 2 CPU cores; it has never seen a real camera image, and its '
            'scores on held-out rooms are in models/synthetic-small/MODEL_CARD.md. This scene is '
            'held out too: the model never trained on it.'
        )
    elif preset == 'tiny-random':
        print(
            'Note: tiny-random has random weights, so its answers mean nothing; the run shows '
            'the pipeline (frames -> scene -> typed answers, scored against the truth), not '
            "spatial skill. No trained preset's weights are on this machine."
        )

    scene = workdir / 'scene'
    options = WorldOptions(width=160, height=120, frames=frames, rate_hz=10.0, storage=storage)
    spec = write_world_scene(scene, DEMO_SCENE_SEED, options)
    lines = generate_qa(scene, per_family=DEMO_QUESTIONS_PER_FAMILY, seed=0)
    write_qa(lines, scene / 'qa.jsonl')
    items = sorted(
        (
            parse_qa_line(json.dumps(line), n, str(scene / 'qa.jsonl'))
            for n, line in enumerate(lines, 1)
        ),
        key=lambda item: item.question.stamp,
    )
    labels = sorted({o.label for o in spec.objects})
    print(
        f'scene: {scene} (spa3r world, held-out seed {DEMO_SCENE_SEED}: {len(spec.objects)} '
        f'objects of {len(labels)} categories, {frames} frames, {storage})'
    )
    print(f'questions: {len(items)} with exact answers ({scene / "qa.jsonl"})')

    camera_topic, odom_topic = TOPICS['rgb'], TOPICS['odom']
    with domain_coordinator.domain_id() as domain:
        env = ros_child_env(domain)
        node_args = [
            '-m', 'spa3r_ros.ros.node', '--ros-args',
            '-p', 'autostart:=true', '-p', f'model.preset:={preset!r}',
            '-p', f'inputs.image_topics:=[{camera_topic}]',
            '-p', f'inputs.odom_topic:={odom_topic}',
            '-p', 'status.rate_hz:=2.0',
        ]  # fmt: skip
        with ManagedProcess(node_args, workdir / 'node.log', env) as node:
            if not node.wait_for_output(ACTIVE_MESSAGE, 30):
                print(node.output())
                print('the node did not become active')
                return 1
            # The window the node took: by default the one the model was trained with.
            window = re.search(r'keyframe window (\d+)', node.output())
            print(
                f'node: active on ROS domain {domain}, keyframe window '
                f'{window.group(1) if window else "?"} (log: {workdir / "node.log"})'
            )
            context = Context()
            rclpy.init(context=context, domain_id=domain)
            try:
                player = rclpy.create_node('spa3r_demo_player', context=context)
                client = SpatialQueryClient(context)
                try:
                    if not client.wait_for_server(30):
                        print('no action server')
                        return 1
                    asked = _Asker(client, items, score_answer)
                    start = time.monotonic()
                    # Each question is asked when the bag reaches its time (its frame has just
                    # been published; min_stamp makes the node answer from a scene that holds
                    # it), so "me" in the camera questions is the robot at that moment.
                    sent = play_bag(
                        player,
                        str(scene / BAG_DIR),
                        topics=[camera_topic, odom_topic],
                        rate=2.0,
                        on_message=asked.on_message,
                    )
                    asked.ask_remaining()
                    took = time.monotonic() - start
                    print(f'replayed {sent} messages (frames and odometry) at 2x in {took:.1f} s')
                    asked.summary()
                    outcome = client.ask(MALFORMED, timeout=120)
                    code = ResultCode(outcome.result.code)
                    print(
                        f'- a malformed goal ({MALFORMED.task.name} with one object): {code.name}'
                    )
                    print(f'    {outcome.result.message}')
                    failures = asked.failures + (code != ResultCode.INVALID_GOAL)
                finally:
                    client.close()
                    player.destroy_node()
            finally:
                context.try_shutdown()
            rc = node.stop()
        log = node.output()
    received = [line for line in log.splitlines() if 'goal finished' in line]
    print(f'node exited with {rc}; it logged {len(received)} finished goals')
    print(f'files kept in {workdir}')
    return 0 if rc == 0 and failures == 0 else 1


def _shown(text: str, limit: int = 40) -> str:
    """An answer as printable ASCII (random weights produce any bytes), cut at ``limit``."""
    shown = ascii(text[:limit])
    return shown if len(text) <= limit else f'{shown}...'


class _Asker:
    """Asks each question when the bag reaches its time and prints it beside its truth."""

    def __init__(self, client, items, score) -> None:
        self.client = client
        self.pending = list(items)
        self.score = score
        self.scores: list[tuple[float, float]] = []
        self.failures = 0

    def on_message(self, message) -> None:
        time_sec = ns_to_sec(message.stamp_ns)
        while self.pending and self.pending[0].question.stamp <= time_sec + 1e-6:
            self._ask(self.pending.pop(0))

    def ask_remaining(self) -> None:
        while self.pending:
            self._ask(self.pending.pop(0))

    def _ask(self, item) -> None:
        request = item.question.request
        goal = SpatialQueryRequest(
            task=request.task,
            question=request.question,
            objects=request.objects,
            options=request.options,
            min_stamp=item.question.stamp,
            max_new_tokens=request.max_new_tokens,
        )
        result = self.client.ask(goal, timeout=120).result
        truth = item.truth
        prompt = build_prompt(goal)
        if truth.family.numeric:
            expected = f'{truth.value:.4g} {truth.unit}'.rstrip()
        else:
            expected = (
                f'{"ABCDEFGHIJ"[truth.choice_index]}. {prompt.option_texts[truth.choice_index]}'
            )
        print(f'- [{truth.family.name}] {prompt.question}')
        if result.code != ResultCode.OK:
            self.failures += 1
            print(f'    -> {ResultCode(result.code).name}: {result.message}')
            self.scores.append((0.0, 0.0))
            return
        scored = self.score(item, result.answer)
        strict, lenient = scored['strict']['score'], scored['lenient']['score']
        self.scores.append((strict, lenient))
        print(
            f'    answer {_shown(result.answer)} | truth {expected} | score strict {strict:.2f}, '
            f'lenient {lenient:.2f} (scene v{result.scene_version}, {result.num_frames} frames)'
        )

    def summary(self) -> None:
        if not self.scores:
            print('no question was asked')
            return
        strict = sum(s for s, _ in self.scores) / len(self.scores)
        lenient = sum(s for _, s in self.scores) / len(self.scores)
        print(
            f'mean score over {len(self.scores)} questions: strict {100 * strict:.1f}, '
            f'lenient {100 * lenient:.1f} (MRA for numbers, accuracy for choices; spa3r eval '
            'gives the per-family table and the baselines)'
        )

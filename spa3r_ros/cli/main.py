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


"""``spa3r``: one command for the project's tools (``spa3r <command> --help`` for each)."""

import importlib
import sys

# command -> module with a main(argv) -> int. Every command line lives in spa3r_ros.cli; the logic
# behind it in tools/, data/ or ros/. Each module also runs as ``python -m spa3r_ros.cli.<name>``.
COMMANDS = {
    'golden': ('spa3r_ros.cli.golden', 'check a model against a golden-vector folder'),
    'play': ('spa3r_ros.cli.play', 'publish a rosbag2 recording into ROS 2 (+ /clock)'),
    'bag': ('spa3r_ros.cli.bag', 'write a rosbag2 recording from images or a video'),
    'dump-params': (
        'spa3r_ros.cli.dump_params',
        'regenerate config/spa3r.yaml + README table',
    ),
    'demo': ('spa3r_ros.cli.demo', 'end-to-end run: node, bag replay, questions'),
    'replay': ('spa3r_ros.cli.replay', 'answer a JSONL questions file against a bag'),
    'ask': ('spa3r_ros.cli.ask', 'answer one question after a whole bag'),
    'eval': ('spa3r_ros.cli.eval', "score a model on scenes' questions, with baselines"),
    'qa': ('spa3r_ros.cli.qa', 'write questions with exact answers for a scene or bag'),
    'world': ('spa3r_ros.cli.world', 'generate synthetic RGB-D scenes (bags + scene.json)'),
    'probe': ('spa3r_ros.cli.probe', 'diagnostics: probe correspondence (GASP, per layer)'),
    'train': ('spa3r_ros.cli.train', 'fine-tune on bags: train psfm (Spa3R, self-supervised)'),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
        lines = [f'  {name:<12} {help_}' for name, (_, help_) in COMMANDS.items()]
        print('usage: spa3r <command> [args]\n\ncommands:\n' + '\n'.join(lines))
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == '__main__':
    sys.exit(main())

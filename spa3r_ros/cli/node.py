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

"""``spa3r_node``: the command that starts the node (:func:`spa3r_ros.ros.node.main`).

Everything goes to the node as ROS arguments (``spa3r_node --ros-args -p autostart:=true ...``);
``-h`` / ``--help`` before ``--ros-args`` prints how to use it instead of starting a node.
rclpy is imported only when the node starts.
"""

import sys

USAGE = """usage: spa3r_node [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r FROM:=TO] ...]

Start the spa3r_ros lifecycle node: camera frames in, SpatialQuery answers out.

  -p autostart:=true           configure and activate at start-up (launch does it otherwise)
  -p model.preset:=tiny-random the model preset (models/registry.yaml; '' = no model)
  --params-file FILE           parameters file, e.g. config/spa3r.yaml
  -r image_raw:=/camera/...    remap the camera topic

Every parameter, with its default and range: README.md "Parameters", or `spa3r dump-params`.
Run ROS processes with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (and, on shared machines, in a
private network namespace: scripts/in_netns.sh) unless the robot's network is meant."""


def main(argv: list[str] | None = None) -> int:
    """Start the node with ``argv`` (default ``sys.argv``, program name first)."""
    argv = list(sys.argv if argv is None else argv)
    own = argv[1 : argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    if '-h' in own or '--help' in own:
        print(USAGE)
        return 0
    from spa3r_ros.ros.node import main as node_main

    return node_main(argv)


if __name__ == '__main__':
    sys.exit(main())

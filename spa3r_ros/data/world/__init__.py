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

"""Synthetic indoor worlds with exact ground truth: layout, rendering, recording (``spa3r world``).

ROS-free (numpy, rosbags). Modules, imported explicitly by those that need them:

* ``scene_json``: the ground-truth file format (``scene.json``);
* ``layout``: rooms, the object catalogue and placement;
* ``textures``: procedural surface textures;
* ``render``: the project's one renderer, a numpy ray caster (also draws ``data.demo_scene``);
* ``trajectory``: the robot's smooth collision-free path and the camera mount;
* ``generate``: a scene -> ``bag/`` + ``scene.json`` (the logic of ``spa3r world``).
"""

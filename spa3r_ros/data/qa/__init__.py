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

"""Spatial questions with exact answers (``spa3r qa``): the QA file format and its generators.

ROS-free. ``records`` is the file format (the ``spa3r replay`` questions format plus ground-truth
keys); the generators read a scene's ``scene.json`` (annotations) or its bag (depth + pose).
"""

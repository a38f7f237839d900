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

"""spa3r_ros: spatial questions about a robot's camera stream, answered by Spa3R + Spa3-VLM.

This package is two things at once:

* the ROS-free core library (``configs``, ``core``, ``models``, ``data``, ``tools``, ``cli``),
  which imports without rclpy, torch is only needed by the model code;
* when built with colcon (or the repository's set-up script), the ROS 2 interface package whose
  generated modules ``spa3r_ros.msg`` and ``spa3r_ros.action`` are installed into site-packages.

The two halves meet here: ``extend_path`` lets ``import spa3r_ros.msg`` find the generated modules
in site-packages while the rest of the package comes from the source tree (or vice versa), so a
developer can test the source tree against interfaces built into the virtual environment.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = '0.1.0'

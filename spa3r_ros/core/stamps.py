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


"""Times from nanoseconds: one conversion for every absolute stamp in the project.

ROS stamps (``builtin_interfaces/Time``: ``sec`` + ``nanosec``) and bag record times (integer
nanoseconds since the epoch) become float seconds here and nowhere else. The conversion is the
correctly rounded quotient of the integer nanoseconds (Python's ``int / int``), so the node, the
offline tools, ``scene.json`` and QA files give the same float for the same stamp, to the bit. The
two shortcuts it replaces disagree with it: ``ns * 1e-9`` (``1e-9`` is not exact, and ``ns`` above
2**53 is rounded before the product) and ``sec + nanosec * 1e-9`` (rounds twice) are one unit in
the last place off for about 40 % of stamps near 2024, enough for a question asked "at a frame's
time" to miss that frame. Durations (differences of nanoseconds) may use ``* 1e-9``.
"""

NS_PER_SEC = 1_000_000_000


def ns_to_sec(ns: int) -> float:
    """Integer nanoseconds since the epoch -> float seconds, correctly rounded."""
    return int(ns) / NS_PER_SEC


def stamp_to_sec(sec: int, nanosec: int) -> float:
    """A ``sec`` + ``nanosec`` stamp -> float seconds, correctly rounded (as :func:`ns_to_sec`)."""
    return (int(sec) * NS_PER_SEC + int(nanosec)) / NS_PER_SEC

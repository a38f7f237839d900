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

"""ROS 2 name rules without ROS: topic names a publisher, a remap or a bag may use."""

import re

# A ROS 2 topic name (design article "Topic and Service name mapping"): tokens of letters, digits
# and underscores that do not start with a digit, separated by single slashes; absolute ('/a/b'),
# relative ('a/b') or private ('~/a'); no trailing slash. Substitutions ('{node}') are refused.
_TOKEN = r'[A-Za-z_][A-Za-z0-9_]*'
_TOPIC_RE = re.compile(rf'^(~|~/{_TOKEN}(/{_TOKEN})*|/?{_TOKEN}(/{_TOKEN})*)$')
# rcl refuses fully qualified names longer than this: RMW_TOPIC_MAX_NAME_LENGTH, which is 255
# (the DDS name limit) less 8 for the longest ROS-specific DDS prefix. A bag or remap name longer
# than that could never be published.
MAX_TOPIC_NAME_LENGTH = 247


def topic_name_error(name: object, *, absolute: bool = False) -> str | None:
    """Why ``name`` is not a valid ROS 2 topic name, or None when it is.

    Args:
        name: the name to check.
        absolute: also require a leading ``/`` (bags store fully qualified names).
    """
    if not isinstance(name, str) or not name:
        return 'a topic name must be a non-empty string'
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f'topic name of {len(name)} characters; at most {MAX_TOPIC_NAME_LENGTH}'
    if not _TOPIC_RE.match(name):
        return (
            f'{name!r} is not a valid ROS 2 topic name (tokens of letters, digits and '
            "underscores, not starting with a digit, separated by single '/'; no trailing '/')"
        )
    if absolute and not name.startswith('/'):
        return f'{name!r}: expected an absolute topic name (/a/b)'
    return None

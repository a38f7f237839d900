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

"""Argument checks shared by every ``spa3r`` command: bad values end in exit 2 with the reason.

Each factory returns an ``argparse`` ``type=`` callable: argparse turns its
:class:`argparse.ArgumentTypeError` into ``spa3r <cmd>: error: argument --x: <reason>`` and exit
status 2, so no command line value can reach the code behind it unchecked (a negative thread
count, a NaN rate, a topic name ROS would refuse with a traceback later).
"""

import argparse
import math

from spa3r_ros.data.ros_names import topic_name_error

# Longest integer text accepted (Python refuses int() of more than 4300 digits with a message
# about sys.set_int_max_str_digits, which means nothing to a user).
_MAX_INT_DIGITS = 30


def topic_name(text: str) -> str:
    """``type=`` for a ROS 2 topic name."""
    error = topic_name_error(text)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return text


def absolute_topic_name(text: str) -> str:
    """``type=`` for an absolute ROS 2 topic name (a bag stores fully qualified names)."""
    error = topic_name_error(text, absolute=True)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return text


def int_range(low: int | None = None, high: int | None = None):
    """``type=`` for an integer in ``[low, high]`` (either bound may be None)."""
    if low is not None and high is not None:
        wanted = f'an integer from {low} to {high}'
    elif low is not None:
        wanted = f'an integer >= {low}'
    elif high is not None:
        wanted = f'an integer <= {high}'
    else:
        wanted = 'an integer'

    def parse(text: str) -> int:
        stripped = text.strip()
        if len(stripped.lstrip('+-')) > _MAX_INT_DIGITS:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {len(stripped)} characters')
        try:
            value = int(stripped)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}') from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}')
        return value

    parse.__name__ = 'integer'  # argparse names the type in some messages
    return parse


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """``type=`` for a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if low is not None:
        wanted = f'a number {">" if low_open else ">="} {low:g}'
        if high is not None:
            wanted += f' and <= {high:g}'
    elif high is not None:
        wanted = f'a number <= {high:g}'
    else:
        wanted = 'a finite number'

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}') from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}')
        return value

    parse.__name__ = 'number'
    return parse


# The types most commands need.
positive_float = float_range(0.0, low_open=True)
non_negative_float = float_range(0.0)
positive_int = int_range(1)
# torch CPU threads: 0 lets torch decide; more than 4096 is a typo, not a machine.
thread_count = int_range(0, 4096)

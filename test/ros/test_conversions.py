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

"""Time <-> float conversions at the edges of builtin_interfaces/Time: no wrap, no silent loss."""

import math

from builtin_interfaces.msg import Time
import pytest

from spa3r_ros.action import SpatialQuery
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.types import MAX_STAMP_SEC, ResultCode, SceneStatusReport, SpatialAnswer
from spa3r_ros.ros.conversions import (
    header_stamp_sec,
    request_from_goal,
    result_from_answer,
    sec_to_time,
    status_msg,
    time_to_sec,
)

pytestmark = pytest.mark.ros

INT32_MAX = 2**31 - 1
EDGES = [
    (0, 1),
    (0, 999_999_999),
    (1, 0),
    (1, 999_999_999),
    (1_700_000_000, 123_456_789),
    (2**23, 999_999_999),
    (INT32_MAX - 1, 999_999_999),
    (INT32_MAX, 0),
    (INT32_MAX, 500_000_000),
    (INT32_MAX, 999_999_999),
]


@pytest.mark.parametrize(('sec', 'nanosec'), EDGES)
def test_round_trip_never_wraps_and_stays_within_a_microsecond(sec, nanosec):
    back = sec_to_time(time_to_sec(Time(sec=sec, nanosec=nanosec)))
    assert 0 <= back.sec <= INT32_MAX and 0 <= back.nanosec < 10**9
    error_ns = abs((back.sec * 10**9 + back.nanosec) - (sec * 10**9 + nanosec))
    assert error_ns <= 1000, (sec, nanosec, back)
    if sec < 2**23:  # float64 keeps every nanosecond there
        assert (back.sec, back.nanosec) == (sec, nanosec)


def test_the_reported_wrap_is_gone():
    """2147483647.999999999 came back as sec = -2147483648."""
    back = sec_to_time(2147483647.999999999)
    assert (back.sec, back.nanosec) == (INT32_MAX, 999_999_999)
    assert sec_to_time(MAX_STAMP_SEC) == back


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf, 2.0**31 + 1.0, 1e30])
def test_values_no_time_can_carry_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match='does not fit builtin_interfaces/Time'):
        sec_to_time(bad)


def test_zero_and_negative_seconds_are_the_zero_time():
    assert sec_to_time(0.0) == Time() and sec_to_time(-3.0) == Time()
    assert sec_to_time(0.4999999999) == Time(sec=0, nanosec=500_000_000)
    assert sec_to_time(1.9999999999) == Time(sec=2, nanosec=0), 'rounding carries into sec'


@pytest.mark.parametrize(
    ('stamp', 'match'),
    [(Time(sec=-1), 'negative'), (Time(sec=1, nanosec=1_000_000_000), 'nanosec')],
)
def test_invalid_times_are_refused(stamp, match):
    with pytest.raises(ValueError, match=match):
        time_to_sec(stamp)
    with pytest.raises(ValueError, match=match):
        header_stamp_sec(stamp, lambda: 5.0)
    goal = SpatialQuery.Goal(question='q', min_stamp=stamp)
    with pytest.raises(QueryError, match=f'min_stamp: .*{match}'):
        request_from_goal(goal)


def test_an_unset_header_stamp_is_now():
    assert header_stamp_sec(Time(), lambda: 5.0) == 5.0
    assert header_stamp_sec(Time(sec=3), lambda: 5.0) == 3.0


def test_messages_carry_the_largest_values():
    answer = SpatialAnswer(ResultCode.OK, scene_version=2**53, scene_stamp=MAX_STAMP_SEC)
    result = result_from_answer(answer)
    assert result.scene_stamp == Time(sec=INT32_MAX, nanosec=999_999_999)
    report = SceneStatusReport(
        scene_version=2**53, scene_stamp=MAX_STAMP_SEC, frames_lost=7, callback_errors=2
    )
    msg = status_msg(report, Time(sec=1))
    assert msg.scene_stamp.sec == INT32_MAX and msg.frames_lost == 7 and msg.callback_errors == 2

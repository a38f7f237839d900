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


"""Message <-> core type conversions (the only place that knows both sides)."""

from collections.abc import Callable
import math

from builtin_interfaces.msg import Time
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage, Image

from spa3r_ros.action import SpatialQuery
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.image_decode import decode_compressed, decode_raw, DecodedImage
from spa3r_ros.core.stamps import NS_PER_SEC, stamp_to_sec
from spa3r_ros.core.types import (
    MAX_STAMP_SEC,
    QueryFeedback,
    SceneStatusReport,
    SpatialAnswer,
    SpatialQueryRequest,
    Task,
)
from spa3r_ros.msg import SceneStatus
from spa3r_ros.scene.odometry import Pose, pose_from_odometry_fields

INT32_MAX = 2**31 - 1


def time_to_sec(stamp: Time) -> float:
    """builtin_interfaces/Time -> float seconds, refusing a Time that is not a valid stamp.

    Float64 seconds keep every nanosecond below about 2**23 s; near 2**31 s they round to about
    0.24 microseconds (never past :data:`MAX_STAMP_SEC`, so :func:`sec_to_time` cannot wrap).

    Raises:
        ValueError: if ``sec`` is negative or ``nanosec`` is not below 10**9 (the message says
            which), e.g. a header stamp before 1970 or a malformed Time.
    """
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec < 0:
        raise ValueError(f'stamp sec = {sec} is negative (before 1970): not a valid time')
    if not 0 <= nanosec < NS_PER_SEC:
        raise ValueError(f'stamp nanosec = {nanosec} is not in [0, 999999999]')
    return stamp_to_sec(sec, nanosec)


def sec_to_time(seconds: float) -> Time:
    """Float seconds -> builtin_interfaces/Time, without wrapping.

    ``0`` (and any value <= 0) is the zero Time ("none"). Values up to :data:`MAX_STAMP_SEC`
    (the float of the largest Time) convert to the nearest Time, clamped to sec 2147483647,
    nanosec 999999999 at the top; nanosec is always below 10**9.

    Raises:
        ValueError: for NaN, infinities and values above :data:`MAX_STAMP_SEC`, which no Time can
            carry (the message says so).
    """
    if not math.isfinite(seconds) or seconds > MAX_STAMP_SEC:
        raise ValueError(
            f'stamp {seconds!r} s does not fit builtin_interfaces/Time '
            f'(0 .. {INT32_MAX}.999999999 s)'
        )
    if seconds <= 0:
        return Time()
    sec = math.floor(seconds)
    nanosec = round((seconds - sec) * NS_PER_SEC)
    if nanosec >= NS_PER_SEC:  # rounding carried into the next second
        sec, nanosec = sec + 1, nanosec - NS_PER_SEC
    if sec > INT32_MAX:  # only the float of the largest Time itself (2**31) gets here
        sec, nanosec = INT32_MAX, NS_PER_SEC - 1
    return Time(sec=sec, nanosec=nanosec)


def header_stamp_sec(stamp: Time, now: Callable[[], float]) -> float:
    """A message header's stamp in seconds; an unset (zero) stamp is replaced by ``now()``.

    Raises:
        ValueError: for a stamp that is not a valid time (see :func:`time_to_sec`).
    """
    seconds = time_to_sec(stamp)
    return seconds if seconds > 0.0 else now()


def image_from_msg(msg: Image, max_size: tuple[int, int]) -> DecodedImage:
    """Decode a sensor_msgs/Image no larger than ``max_size`` (width, height).

    Raises:
        ImageDecodeError: for bad encodings or sizes (``FrameTooLargeError`` above ``max_size``).
    """
    return decode_raw(
        msg.encoding,
        msg.height,
        msg.width,
        msg.step,
        msg.data,
        bool(msg.is_bigendian),
        max_size=max_size,
    )


def image_from_compressed_msg(msg: CompressedImage, max_size: tuple[int, int]) -> DecodedImage:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) no larger than ``max_size``.

    Raises:
        ImageDecodeError: for bad data (``FrameTooLargeError`` above ``max_size``, from the
            header, before decoding).
    """
    return decode_compressed(msg.format, msg.data, max_size=max_size)


def request_from_goal(goal: SpatialQuery.Goal) -> SpatialQueryRequest:
    """Goal message -> request. An unknown task value is kept, so validation can name it.

    Raises:
        QueryError: if ``min_stamp`` is not a valid time (the goal then ends INVALID_GOAL).
    """
    try:
        min_stamp = time_to_sec(goal.min_stamp)
    except ValueError as err:
        raise QueryError(f'min_stamp: {err}') from None
    task_value = int(goal.task)
    task = Task(task_value) if task_value in Task._value2member_map_ else task_value
    return SpatialQueryRequest(
        task=task,  # type: ignore[arg-type]
        question=goal.question,
        objects=tuple(goal.objects),
        options=tuple(goal.options),
        min_stamp=min_stamp,
        timeout_sec=float(goal.timeout_sec),
        max_new_tokens=int(goal.max_new_tokens),
    )


def result_from_answer(answer: SpatialAnswer) -> SpatialQuery.Result:
    """Answer -> result message."""
    return SpatialQuery.Result(
        code=int(answer.code),
        message=answer.message,
        answer=answer.answer,
        value=float(answer.value),
        unit=answer.unit,
        choice_index=int(answer.choice_index),
        choice=answer.choice,
        scene_version=int(answer.scene_version),
        scene_stamp=sec_to_time(answer.scene_stamp),
        num_frames=int(answer.num_frames),
        latency_sec=float(answer.latency_sec),
    )


def feedback_msg(feedback: QueryFeedback) -> SpatialQuery.Feedback:
    """Feedback -> feedback message."""
    return SpatialQuery.Feedback(
        stage=feedback.stage.value,
        progress=float(feedback.progress),
        partial_answer=feedback.partial_answer,
    )


def status_msg(report: SceneStatusReport, now: Time) -> SceneStatus:
    """Status report -> SceneStatus message stamped ``now``."""
    msg = SceneStatus()
    msg.header.stamp = now
    msg.frames_received = report.frames_received
    msg.frames_dropped = report.frames_dropped
    msg.frames_buffered = report.frames_buffered
    msg.keyframes = report.keyframes
    msg.scene_version = report.scene_version
    msg.scene_stamp = sec_to_time(report.scene_stamp)
    msg.scene_age_sec = float(report.scene_age_sec)
    msg.last_update_latency_sec = float(report.last_update_latency_sec)
    msg.last_query_latency_sec = float(report.last_query_latency_sec)
    msg.device = report.device
    msg.memory_bytes = report.memory_bytes
    msg.model_id = report.model_id
    msg.ready = report.ready
    msg.frames_lost = report.frames_lost
    msg.incompatible_qos_events = report.incompatible_qos_events
    msg.callback_errors = report.callback_errors
    return msg


def pose_from_odometry(msg: Odometry) -> Pose:
    """``nav_msgs/Odometry`` -> :class:`~spa3r_ros.scene.odometry.Pose` (header stamp, pose).

    Raises:
        ValueError: if the stamp is not a valid time, the pose is not finite, or the quaternion
            is degenerate.
    """
    p = msg.pose.pose.position
    q = msg.pose.pose.orientation
    return pose_from_odometry_fields(
        time_to_sec(msg.header.stamp), (p.x, p.y, p.z), (q.x, q.y, q.z, q.w)
    )

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

"""Tests for the depth+pose questions (data/qa/depth_pose.py) and data/rgbd_stream.py.

Every bag is written here by hand (tiny images, known depth maps, odometry and camera mount),
and every answer is checked against a value computed in the test from those known inputs.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import math
from pathlib import Path
import re
from typing import Any

import numpy as np
import pytest

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.bag_writer import BagWriter
from spa3r_ros.data.qa.depth_pose import (
    CAMERA_DISPLACEMENT,
    CAMERA_ROTATION,
    depth_pose_questions,
    DepthPoseRules,
    SURFACE_DEPTH,
    window_depth,
)
from spa3r_ros.data.qa.records import load_qa, write_qa
from spa3r_ros.data.rgbd_stream import (
    camera_poses,
    Intrinsics,
    RgbdGeometry,
    RgbdTopics,
    RigidTransform,
    rotation_matrix,
    select_rgbd_topics,
    static_transform,
    StaticTransform,
)
from spa3r_ros.data.rosbag_io import (
    BagReader,
    CAMERA_INFO_MSGTYPE,
    IMAGE_MSGTYPE,
    ODOMETRY_MSGTYPE,
)
from spa3r_ros.data.world.scene_json import Pose as MountPose

T0_NS = 1_700_000_000 * 10**9
WIDTH, HEIGHT = 16, 12
FX, FY, CX, CY = 20.0, 20.0, 8.0, 6.0
RGB, DEPTH, INFO, ODOM, TF_STATIC = (
    '/camera/color/image_raw',
    '/camera/depth/image_raw',
    '/camera/color/camera_info',
    '/odom',
    '/tf_static',
)
OPTICAL = 'camera_color_optical_frame'
# Optical axes (x right, y down, z forward) in the base frame (x forward, y left, z up).
OPTICAL_IN_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
OPTICAL_QUATERNION = (-0.5, 0.5, -0.5, 0.5)
MOUNT = MountPose((0.2, 0.0, 1.0), OPTICAL_QUATERNION)
NO_MARKS = DepthPoseRules(marked_points=False)
TIME_PATTERN = re.compile(r't = ([0-9.]+) s and t = ([0-9.]+) s')


def ns(seconds: float) -> int:
    return T0_NS + round(seconds * 1e9)


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


@dataclass
class BagSpec:
    """What a hand-written bag holds (times in seconds after T0)."""

    depth: Sequence[tuple[float, np.ndarray]] = ()
    encoding: str = '32FC1'
    rgb_times: Sequence[float] | None = None  # None: one colour frame per depth frame
    odom: Sequence[tuple[float, Sequence[float], Sequence[float]]] = ()
    tf: Sequence[tuple[str, str, Sequence[float], Sequence[float]]] = field(
        default_factory=lambda: [('base_link', OPTICAL, MOUNT.position, MOUNT.orientation)]
    )
    storage: str = 'mcap'
    depth_topics: Sequence[str] = (DEPTH,)  # each carries the same depth frames


def odometry_msg(writer: BagWriter, t: float, position: Sequence[float], q: Sequence[float]):
    types = writer.typestore.types
    pose = types['geometry_msgs/msg/Pose'](
        position=types['geometry_msgs/msg/Point'](*map(float, position)),
        orientation=types['geometry_msgs/msg/Quaternion'](*map(float, q)),
    )
    zero = types['geometry_msgs/msg/Vector3'](0.0, 0.0, 0.0)
    return types[ODOMETRY_MSGTYPE](
        header=writer.header(ns(t), 'odom'),
        child_frame_id='base_link',
        pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=np.zeros(36)),
        twist=types['geometry_msgs/msg/TwistWithCovariance'](
            twist=types['geometry_msgs/msg/Twist'](linear=zero, angular=zero),
            covariance=np.zeros(36),
        ),
    )


def tf_msg(writer: BagWriter, transforms: Sequence[tuple[str, str, Sequence, Sequence]]):
    types = writer.typestore.types
    stamped = [
        types['geometry_msgs/msg/TransformStamped'](
            header=writer.header(T0_NS, parent),
            child_frame_id=child,
            transform=types['geometry_msgs/msg/Transform'](
                translation=types['geometry_msgs/msg/Vector3'](*map(float, t)),
                rotation=types['geometry_msgs/msg/Quaternion'](*map(float, q)),
            ),
        )
        for parent, child, t, q in transforms
    ]
    return types['tf2_msgs/msg/TFMessage'](transforms=stamped)


def write_bag(path: Path, spec: BagSpec) -> Path:
    """Write the bag in recording order; the first message is at T0 (t = 0)."""
    events: list[tuple[int, int, str, Callable[[BagWriter], Any]]] = []
    if spec.tf:
        events.append((ns(0.0), 0, TF_STATIC, lambda w: tf_msg(w, spec.tf)))
    events.append(
        (
            ns(0.0),
            1,
            INFO,
            lambda w: w.camera_info(
                np.array([[FX, 0, CX], [0, FY, CY], [0, 0, 1]]), WIDTH, HEIGHT, ns(0.0), OPTICAL
            ),
        )
    )
    for t, position, q in spec.odom:
        events.append((ns(t), 2, ODOM, lambda w, t=t, p=position, q=q: odometry_msg(w, t, p, q)))
    rgb_times = [t for t, _ in spec.depth] if spec.rgb_times is None else spec.rgb_times
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for t in rgb_times:
        events.append((ns(t), 3, RGB, lambda w, t=t: w.image(rgb, ns(t), OPTICAL)))
    for topic in spec.depth_topics:
        for t, depth in spec.depth:
            events.append(
                (
                    ns(t),
                    4,
                    topic,
                    lambda w, t=t, d=depth: w.image(d, ns(t), OPTICAL, spec.encoding),
                )
            )
    events.sort(key=lambda e: (e[0], e[1]))
    with BagWriter(path, storage=spec.storage) as writer:
        used = {e[2] for e in events}
        for topic, msgtype in (
            (TF_STATIC, 'tf2_msgs/msg/TFMessage'),
            (INFO, CAMERA_INFO_MSGTYPE),
            (ODOM, ODOMETRY_MSGTYPE),
            (RGB, IMAGE_MSGTYPE),
            *((topic, IMAGE_MSGTYPE) for topic in spec.depth_topics),
        ):
            if topic in used:
                writer.add_topic(topic, msgtype)
        for stamp_ns, _, topic, build in events:
            writer.write(topic, stamp_ns, build(writer))
    return path


def flat(value: float) -> np.ndarray:
    return np.full((HEIGHT, WIDTH), value, np.float32)


def still_odometry(duration: float, step: float = 0.1) -> list[tuple[float, list, tuple]]:
    times = np.arange(0.0, duration + 1e-9, step)
    return [(float(t), [0.0, 0.0, 0.0], yaw_quaternion(0.0)) for t in times]


def questions(path: Path, seed: int = 0, per_family: int = 50, **kwargs) -> list[dict]:
    return depth_pose_questions(
        path, rng=np.random.default_rng(seed), per_family=per_family, **kwargs
    )


def of_family(lines: list[dict], family: str) -> list[dict]:
    return [line for line in lines if line['family'] == family]


def times_of(line: dict) -> tuple[float, float]:
    match = TIME_PATTERN.search(line['question'])
    assert match, line['question']
    return float(match.group(1)), float(match.group(2))


# ------------------------------------------------------------------------------ surface depth


def test_surface_depth_centre_is_the_window_median(tmp_path: Path) -> None:
    # Frame k is a wall at 1 + 0.5 k metres; one pixel of the 5x5 centre window of frame 1 is a
    # hole (1 of 25 = 4 % missing, allowed), and frame 2 has a 3 cm bump beside the centre.
    depths = [flat(1.0 + 0.5 * k) for k in range(4)]
    depths[1][6, 8] = np.nan
    depths[2][5, 7] = 2.03
    spec = BagSpec(depth=[(0.5 + k, d) for k, d in enumerate(depths)], odom=still_odometry(4))
    lines = of_family(questions(write_bag(tmp_path / 'bag', spec), rules=NO_MARKS), SURFACE_DEPTH)
    assert [line['gt_value'] for line in lines] == [1.0, 1.5, 2.0, 2.5]
    assert all('centre of the newest frame' in line['question'] for line in lines)
    # Asked when the frame (colour and depth, same recording time) is the newest one.
    assert [line['stamp'] for line in lines] == [ns(0.5 + k) / 10**9 for k in range(4)]
    assert {(line['task'], line['level'], line['source'], line['gt_unit']) for line in lines} == {
        ('free_form', 0, 'depth+pose', 'm')
    }


def test_surface_depth_marked_points_match_hand_computed_depth(tmp_path: Path) -> None:
    # A slanted wall: depth 2 + 0.01 * column (a 5 px window spreads 0.04 m: no edge). Its
    # median is the depth of the marked pixel (floor(x W), floor(y H)).
    columns = np.arange(WIDTH, dtype=np.float32)
    slanted = np.tile(2.0 + 0.01 * columns, (HEIGHT, 1)).astype(np.float32)
    spec = BagSpec(depth=[(0.5 + k, slanted) for k in range(6)], odom=still_odometry(7))
    lines = of_family(questions(write_bag(tmp_path / 'bag', spec), seed=3), SURFACE_DEPTH)
    marked = [line for line in lines if 'point x =' in line['question']]
    assert len(marked) == 6  # one marked point per frame, all trusted
    for line in marked:
        x, y = map(float, re.search(r'x = ([0-9.]+), y = ([0-9.]+)', line['question']).groups())
        assert 0.1 <= x <= 0.9 and 0.1 <= y <= 0.9
        assert line['gt_value'] == pytest.approx(2.0 + 0.01 * math.floor(x * WIDTH), abs=1e-6)


@pytest.mark.parametrize(
    'defect',
    [
        pytest.param(lambda d: d.__setitem__((slice(5, 8), slice(7, 10)), np.nan), id='nan'),
        pytest.param(lambda d: d.__setitem__((slice(5, 8), slice(7, 10)), 0.0), id='zero'),
        pytest.param(lambda d: d.__setitem__((slice(5, 8), slice(7, 10)), np.inf), id='inf'),
        pytest.param(lambda d: d.__setitem__((slice(None), slice(8, None)), 3.0), id='edge'),
        pytest.param(lambda d: d.__setitem__((4, 6), 1.5), id='outlier'),
    ],
)
def test_surface_depth_skips_missing_depth_and_edges(tmp_path: Path, defect) -> None:
    good, bad = flat(1.0), flat(2.0)
    defect(bad)
    spec = BagSpec(depth=[(0.5, good), (1.5, bad), (2.5, good)], odom=still_odometry(3))
    lines = of_family(questions(write_bag(tmp_path / 'bag', spec), rules=NO_MARKS), SURFACE_DEPTH)
    assert [line['stamp'] for line in lines] == [ns(0.5) / 10**9, ns(2.5) / 10**9]
    assert [line['gt_value'] for line in lines] == [1.0, 1.0]


def test_window_depth_rules() -> None:
    depth = flat(2.0)
    assert window_depth(depth, 0.5, 0.5, NO_MARKS) == 2.0
    depth[6, 8] = np.nan  # 1 of 25 missing
    assert window_depth(depth, 0.5, 0.5, NO_MARKS) == 2.0
    depth[6, 9] = np.nan
    depth[6, 10] = np.nan  # 3 of 25 = 12 % > 10 %
    assert window_depth(depth, 0.5, 0.5, NO_MARKS) is None
    assert window_depth(depth, 0.5, 0.5, DepthPoseRules(max_missing_fraction=0.2)) == 2.0
    # The window is clipped at the border: a corner pixel sees a 3x3 window.
    corner = flat(1.0)
    corner[2, 2] = np.nan
    assert window_depth(corner, 0.0, 0.0, NO_MARKS) is None
    with pytest.raises(ValueError, match='max_missing_fraction'):
        DepthPoseRules(max_missing_fraction=1.0)


def test_millimetre_depth(tmp_path: Path) -> None:
    depth = flat(1.234)
    depth[0, 0] = np.nan  # written as 0 mm: no measurement, outside the window anyway
    spec = BagSpec(depth=[(0.5, depth)], encoding='16UC1', odom=still_odometry(1))
    lines = of_family(questions(write_bag(tmp_path / 'bag', spec), rules=NO_MARKS), SURFACE_DEPTH)
    assert [line['gt_value'] for line in lines] == [1.234]
    hole = flat(1.234)
    hole[5:8, 7:10] = 0.0
    spec = BagSpec(depth=[(0.5, hole)], encoding='16UC1', odom=still_odometry(1))
    assert questions(write_bag(tmp_path / 'hole', spec), rules=NO_MARKS) == []


def test_depth_frame_without_colour_frame_is_not_asked(tmp_path: Path) -> None:
    spec = BagSpec(
        depth=[(0.5, flat(1.0)), (1.5, flat(2.0))], rgb_times=[0.5], odom=still_odometry(2)
    )
    lines = of_family(questions(write_bag(tmp_path / 'bag', spec), rules=NO_MARKS), SURFACE_DEPTH)
    assert [line['gt_value'] for line in lines] == [1.0]


# ----------------------------------------------------------------------------- camera motion

SPEED, YAW_RATE = 0.5, math.radians(30.0)  # m/s along world x, rad/s about z


def moving_odometry(duration: float, skip: tuple[float, float] | None = None) -> list:
    """Base at (0.5 t, 0, 0) with yaw 30 deg/s, every 0.1 s (none strictly inside ``skip``)."""
    out = []
    for t in np.arange(0.0, duration + 1e-9, 0.1):
        t = round(float(t), 3)
        if skip and skip[0] < t < skip[1]:
            continue
        out.append((t, [SPEED * t, 0.0, 0.0], yaw_quaternion(YAW_RATE * t)))
    return out


def camera_position(t: float, mount_xyz: Sequence[float] = MOUNT.position) -> np.ndarray:
    """Optical centre in the world by hand: base position + yaw-rotated mount offset."""
    yaw = YAW_RATE * t
    mx, my, mz = mount_xyz
    return np.array(
        [
            SPEED * t + mx * math.cos(yaw) - my * math.sin(yaw),
            mx * math.sin(yaw) + my * math.cos(yaw),
            mz,
        ]
    )


FRAME_TIMES = [0.25 + 0.5 * k for k in range(8)]  # between odometry messages: interpolated


def motion_bag(path: Path, **spec: Any) -> Path:
    spec.setdefault('depth', [(t, flat(1.0)) for t in FRAME_TIMES])
    spec.setdefault('odom', moving_odometry(4.2))
    return write_bag(path, BagSpec(**spec))


def test_camera_displacement_and_rotation_match_hand_computed_motion(tmp_path: Path) -> None:
    rules = DepthPoseRules(min_displacement_m=0.21)
    lines = questions(motion_bag(tmp_path / 'bag'), per_family=100, rules=rules)
    moves, turns = of_family(lines, CAMERA_DISPLACEMENT), of_family(lines, CAMERA_ROTATION)
    # 28 pairs of 8 frames; those at least 0.5 s apart whose motion is large enough.
    expected_moves = {
        (a, b)
        for i, a in enumerate(FRAME_TIMES)
        for b in FRAME_TIMES[i + 1 :]
        if np.linalg.norm(camera_position(b) - camera_position(a)) >= 0.21
    }
    assert {times_of(line) for line in moves} == expected_moves
    assert len(expected_moves) < 28  # some pairs moved too little and were skipped
    for line in moves:
        a, b = times_of(line)
        expected = float(np.linalg.norm(camera_position(b) - camera_position(a)))
        assert line['gt_value'] == pytest.approx(expected, abs=1e-3)
        assert line['stamp'] == ns(b) / 10**9  # asked at the later time
        assert (line['task'], line['level'], line['gt_unit']) == ('free_form', 0, 'm')
    assert {times_of(line) for line in turns} == {
        (a, b) for i, a in enumerate(FRAME_TIMES) for b in FRAME_TIMES[i + 1 :] if b - a >= 0.5
    }
    for line in turns:
        a, b = times_of(line)
        assert line['gt_value'] == pytest.approx(30.0 * (b - a), abs=0.01)
        assert line['gt_unit'] == 'deg'


def test_odometry_gap_skips_questions_at_times_in_it(tmp_path: Path) -> None:
    # No odometry between 1.0 s and 2.0 s: frames at 1.25 and 1.75 s have no trusted pose.
    lines = questions(motion_bag(tmp_path / 'bag', odom=moving_odometry(4.2, skip=(1.0, 2.0))))
    motion = of_family(lines, CAMERA_DISPLACEMENT) + of_family(lines, CAMERA_ROTATION)
    used = {t for line in motion for t in times_of(line)}
    assert used == set(FRAME_TIMES) - {1.25, 1.75}
    # The depth question does not need a pose: every frame still has one.
    assert len(of_family(lines, SURFACE_DEPTH)) == 2 * len(FRAME_TIMES)


def test_odometry_that_ends_early_gives_no_pose_after_it(tmp_path: Path) -> None:
    # Odometry until 2.1 s: the last pose is held for half the allowed gap (0.25 s), so the frame
    # at 2.25 s has a pose and the one at 2.75 s has none.
    lines = questions(motion_bag(tmp_path / 'bag', odom=moving_odometry(2.1)))
    used = {t for line in of_family(lines, CAMERA_ROTATION) for t in times_of(line)}
    assert used == {0.25, 0.75, 1.25, 1.75, 2.25}


def test_mount_from_tf_static_chain_equals_mount_argument(tmp_path: Path) -> None:
    # base_link -> camera_link (0.2, 0, 1) -> optical (rotation only): the same mount as MOUNT.
    chain = [
        ('base_link', 'camera_link', (0.2, 0.0, 1.0), (0.0, 0.0, 0.0, 1.0)),
        ('camera_link', OPTICAL, (0.0, 0.0, 0.0), OPTICAL_QUATERNION),
    ]
    from_tf = questions(motion_bag(tmp_path / 'tf', tf=chain), seed=5)
    from_argument = questions(motion_bag(tmp_path / 'arg', tf=()), seed=5, camera_mount=MOUNT)
    assert from_tf == from_argument
    assert of_family(from_tf, CAMERA_DISPLACEMENT)
    # The argument wins over /tf_static: a mount 1 m ahead of the base moves further.
    ahead = MountPose((1.0, 0.0, 1.0), OPTICAL_QUATERNION)
    lines = of_family(
        questions(motion_bag(tmp_path / 'ahead', tf=chain), camera_mount=ahead),
        CAMERA_DISPLACEMENT,
    )
    assert lines
    for line in lines:
        a, b = times_of(line)
        expected = np.linalg.norm(camera_position(b, (1, 0, 1)) - camera_position(a, (1, 0, 1)))
        assert line['gt_value'] == pytest.approx(float(expected), abs=1e-3)


def test_missing_mount_names_the_bag(tmp_path: Path) -> None:
    bag = motion_bag(tmp_path / 'bag', tf=())
    with pytest.raises(DatasetError, match=r"(?s)bag.*/bag'.*tf_static.*pass the mount"):
        questions(bag)
    unrelated = [('base_link', 'lidar', (0, 0, 1), (0, 0, 0, 1))]
    with pytest.raises(DatasetError, match=r"no chain.*'base_link' to 'camera_color_optical"):
        questions(motion_bag(tmp_path / 'lidar', tf=unrelated))


def test_bag_without_depth_or_odometry_names_what_is_missing(tmp_path: Path) -> None:
    no_depth = write_bag(tmp_path / 'nodepth', BagSpec(rgb_times=[0.5], odom=still_odometry(1)))
    with pytest.raises(DatasetError, match=r"(?s)nodepth'.*no depth image topic"):
        questions(no_depth)
    no_odom = write_bag(tmp_path / 'noodom', BagSpec(depth=[(0.5, flat(1.0))]))
    with pytest.raises(DatasetError, match=r"(?s)noodom'.*no odometry"):
        questions(no_odom)


def test_same_seed_same_questions_and_lines_are_valid_qa(tmp_path: Path) -> None:
    bag = motion_bag(tmp_path / 'bag', storage='sqlite3')
    first = questions(bag, seed=11, per_family=3)
    assert first == questions(bag, seed=11, per_family=3)
    assert first != questions(bag, seed=12, per_family=3)
    assert [line['family'] for line in first] == [SURFACE_DEPTH] * 3 + [
        CAMERA_DISPLACEMENT
    ] * 3 + [CAMERA_ROTATION] * 3
    assert len({line['id'] for line in first}) == 9
    path = tmp_path / 'qa.jsonl'
    write_qa(first, path)
    items = load_qa(path)
    assert [item.truth.value for item in items] == [line['gt_value'] for line in first]
    with pytest.raises(ValueError, match='per_family'):
        questions(bag, per_family=-1)
    assert questions(bag, per_family=0) == []


# ------------------------------------------------------------------------------- rgbd_stream


def topics_of(path: Path, **names: Any):
    with BagReader(path) as reader:
        return select_rgbd_topics(reader, **names)


def test_depth_topic_found_by_name_encoding_or_registration(tmp_path: Path) -> None:
    frames = [(0.5, flat(1.5))]
    plain = write_bag(tmp_path / 'plain', BagSpec(depth=frames, odom=still_odometry(1)))
    chosen = topics_of(plain)
    assert (chosen.depth, chosen.odometry, chosen.camera_info, chosen.tf_static, chosen.color) == (
        DEPTH,
        ODOM,
        INFO,
        TF_STATIC,
        (RGB,),
    )
    # No name says depth: the 32FC1 encoding does.
    unnamed = BagSpec(depth=frames, odom=still_odometry(1), depth_topics=('/camera/range/image',))
    assert topics_of(write_bag(tmp_path / 'unnamed', unnamed)).depth == '/camera/range/image'
    assert [line['gt_value'] for line in questions(tmp_path / 'unnamed', rules=NO_MARKS)] == [1.5]
    # Raw and registered depth: the registered one.
    aligned = '/camera/aligned_depth_to_color/image_raw'
    both = BagSpec(depth=frames, odom=still_odometry(1), depth_topics=(DEPTH, aligned))
    assert topics_of(write_bag(tmp_path / 'both', both)).depth == aligned
    # Two depth cameras: which one is ambiguous, unless named.
    two = BagSpec(depth=frames, odom=still_odometry(1), depth_topics=('/a/depth', '/b/depth'))
    write_bag(tmp_path / 'two', two)
    with pytest.raises(DatasetError, match=r"(?s)two'.*several depth topics.*/a/depth, /b/depth"):
        topics_of(tmp_path / 'two')
    assert topics_of(tmp_path / 'two', depth_topic='/b/depth').depth == '/b/depth'
    with pytest.raises(DatasetError, match=r'carries nav_msgs/msg/Odometry.*depth topic'):
        topics_of(plain, depth_topic=ODOM)
    with pytest.raises(DatasetError, match=r"no odometry topic '/wheel_odom'"):
        topics_of(plain, odom_topic='/wheel_odom')


def test_camera_poses_are_odometry_times_mount(tmp_path: Path) -> None:
    frames = camera_poses(motion_bag(tmp_path / 'bag'))
    assert [round(f.stamp - T0_NS * 1e-9, 3) for f in frames] == FRAME_TIMES
    for frame in frames:
        t = round(frame.stamp - T0_NS * 1e-9, 3)
        pose = frame.world_T_camera
        np.testing.assert_allclose(pose.translation, camera_position(t), atol=1e-6)
        yaw = YAW_RATE * t
        world_from_base = np.array(
            [[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]]
        )
        np.testing.assert_allclose(
            rotation_matrix(pose.rotation), world_from_base @ OPTICAL_IN_BASE, atol=1e-6
        )
        np.testing.assert_allclose(frame.intrinsics.k, [[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
        assert (frame.intrinsics.width, frame.intrinsics.height) == (WIDTH, HEIGHT)


def test_static_transform_chains_both_directions() -> None:
    quarter = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))  # 90 deg about z
    edges = [
        StaticTransform('base', 'mast', RigidTransform.from_fields((1, 0, 0), quarter)),
        StaticTransform('cam', 'mast', RigidTransform.from_fields((0, 0, -2), (0, 0, 0, 1))),
    ]
    base_T_cam = static_transform(edges, 'base', '/cam', 'test')
    # mast is at (1, 0, 0) turned 90 deg; cam is 2 m above mast along mast's z (= base z).
    np.testing.assert_allclose(base_T_cam.translation, [1, 0, 2], atol=1e-12)
    np.testing.assert_allclose(base_T_cam.apply(np.array([1.0, 0, 0])), [1, 1, 2], atol=1e-12)
    np.testing.assert_allclose(
        base_T_cam.compose(base_T_cam.inverse()).translation, [0, 0, 0], atol=1e-12
    )
    same = static_transform(edges, 'cam', 'cam', 'test')
    np.testing.assert_array_equal(same.translation, [0, 0, 0])
    np.testing.assert_array_equal(same.rotation, [0, 0, 0, 1])
    with pytest.raises(DatasetError, match="test: no chain.*'base' to 'lidar'"):
        static_transform(edges, 'base', 'lidar', 'test')


def test_mount_lookup_falls_back_to_the_camera_info_frame(tmp_path: Path) -> None:
    mount = RigidTransform.from_mount(MOUNT)
    geometry = RgbdGeometry(
        tmp_path / 'bag',
        RgbdTopics(DEPTH),
        0.0,
        depth_frame_id='camera_depth_optical_frame',  # not in the transforms
        base_frame='base_link',
        static_transforms=[StaticTransform('base_link', OPTICAL, mount)],
        intrinsics=Intrinsics(np.eye(3), WIDTH, HEIGHT, OPTICAL),
    )
    np.testing.assert_allclose(geometry.resolve_mount(None).translation, MOUNT.position)
    geometry.intrinsics = None
    with pytest.raises(DatasetError, match="no chain.*'camera_depth_optical_frame'"):
        geometry.resolve_mount(None)

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


"""Tests for spa3r_ros.data.world.generate: bag contents, scene.json, determinism, refusals."""

import json
import math
from pathlib import Path
import re
import time

import numpy as np
import pytest

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message
from spa3r_ros.data.world.generate import (
    BASE_FRAME,
    build_scene,
    CAMERA_FRAME,
    generate_world,
    TOPICS,
    WORLD_EPOCH_NS,
    WorldOptions,
)
from spa3r_ros.data.world.render import Pinhole, render, ROOM_ID, Scene
from spa3r_ros.data.world.scene_json import parse_scene, polygon_area, read_scene
from spa3r_ros.data.world.trajectory import camera_pose

OPTIONS = WorldOptions(width=40, height=30, frames=6, rate_hz=15.0)


@pytest.fixture(scope='module')
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('world') / 'out'
    generate_world(out, 2, 11, OPTIONS)
    return out


def quat_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob('*') if p.is_file()}


def test_scene_folders_hold_a_bag_and_a_scene_json_that_round_trips(world):
    assert sorted(p.name for p in world.iterdir()) == ['scene_0000', 'scene_0001']
    for folder in world.iterdir():
        assert sorted(p.name for p in folder.iterdir()) == ['bag', 'scene.json']
        spec = read_scene(folder)
        assert spec.to_json() == json.loads((folder / 'scene.json').read_text())
        assert spec.room.floor_area_m2 == pytest.approx(polygon_area(spec.room.polygon))
        p = np.asarray(spec.room.polygon)
        assert np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]) > 0
        assert 4 <= len(spec.objects) <= 16
        assert dict(spec.topics) == TOPICS
        assert spec.frame_rate_hz == 15.0
        assert len(spec.frames) == OPTIONS.frames
        for i, frame in enumerate(spec.frames):
            assert frame.stamp == pytest.approx((WORLD_EPOCH_NS + i * 1e9 / 15.0) * 1e-9)
    # Scenes differ from each other.
    a, b = (read_scene(world / f'scene_000{i}') for i in range(2))
    assert a.seed != b.seed and a.objects != b.objects


def test_bag_topics_types_encodings_and_frames(world):
    folder = world / 'scene_0000'
    spec = read_scene(folder)
    with BagReader(folder / 'bag') as reader:
        assert reader.topics() == {
            TOPICS['rgb']: ('sensor_msgs/msg/Image', 6),
            TOPICS['depth']: ('sensor_msgs/msg/Image', 6),
            TOPICS['camera_info']: ('sensor_msgs/msg/CameraInfo', 6),
            TOPICS['odom']: ('nav_msgs/msg/Odometry', 6),
            TOPICS['tf_static']: ('tf2_msgs/msg/TFMessage', 1),
        }
        assert reader.latched_topics() == {TOPICS['tf_static']}
        messages = list(reader.messages())
    by_topic = {}
    for m in messages:
        stamp = (
            m.msg.header.stamp if hasattr(m.msg, 'header') else m.msg.transforms[0].header.stamp
        )
        assert stamp.sec * 10**9 + stamp.nanosec == m.stamp_ns  # header stamp == record time
        by_topic.setdefault(m.topic, []).append(m)
    [tf] = by_topic[TOPICS['tf_static']]
    [transform] = tf.msg.transforms
    assert (transform.header.frame_id, transform.child_frame_id) == (BASE_FRAME, CAMERA_FRAME)
    t, r = transform.transform.translation, transform.transform.rotation
    assert [t.x, t.y, t.z] == list(spec.camera_mount.position)
    assert [r.x, r.y, r.z, r.w] == list(spec.camera_mount.orientation)
    mount_rotation = quat_matrix(spec.camera_mount.orientation)
    for i, frame in enumerate(spec.frames):
        rgb, depth, info, odom = (by_topic[TOPICS[k]][i].msg for k in
                                  ('rgb', 'depth', 'camera_info', 'odom'))  # fmt: skip
        assert rgb.encoding == 'rgb8' and depth.encoding == '32FC1'
        assert rgb.header.frame_id == depth.header.frame_id == info.header.frame_id == CAMERA_FRAME
        assert (rgb.width, rgb.height, depth.width, depth.height) == (40, 30, 40, 30)
        assert info.distortion_model == 'plumb_bob' and not np.any(info.d)
        np.testing.assert_array_equal(info.k.reshape(3, 3), spec.camera.matrix())
        assert (odom.header.frame_id, odom.child_frame_id) == ('odom', BASE_FRAME)
        # scene.json's camera pose = odometry (world <- base) * mount (base <- camera).
        p, q = odom.pose.pose.position, odom.pose.pose.orientation
        base_rotation = quat_matrix([q.x, q.y, q.z, q.w])
        position = np.array([p.x, p.y, p.z]) + base_rotation @ np.asarray(
            spec.camera_mount.position
        )
        np.testing.assert_allclose(frame.pose.position, position, atol=1e-12)
        np.testing.assert_allclose(
            quat_matrix(frame.pose.orientation), base_rotation @ mount_rotation, atol=1e-12
        )
        assert p.z == 0.0 and abs(q.x) + abs(q.y) == 0.0  # the base drives on the floor
        decoded = image_from_bag_message(depth, 'sensor_msgs/msg/Image')
        assert decoded.kind == 'depth' and np.all(decoded.pixels > 0)  # a closed room


def test_depth_poses_and_boxes_agree_and_visible_counts_equal_the_instance_buffer(world):
    folder = world / 'scene_0001'
    spec = read_scene(folder)
    scene = build_scene(spec.seed, OPTIONS)  # the generator's own world, for the instance buffer
    cam = spec.camera
    with BagReader(folder / 'bag') as reader:
        depths = [
            image_from_bag_message(m.msg, m.msgtype).pixels
            for m in reader.messages([TOPICS['depth']])
        ]
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    seen_objects = 0
    for i, frame in enumerate(spec.frames):
        rotation, position = camera_pose(scene.mount, scene.path.xy[i], float(scene.path.yaw[i]))
        view = render(Scene(scene.layout), _pinhole(cam), rotation, position)
        assert frame.visible == view.visible_counts()
        np.testing.assert_array_equal(depths[i], view.depth)
        # Unproject the recorded depth with scene.json's intrinsics and pose alone.
        z = depths[i].astype(np.float64)
        local = np.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], -1)
        world_points = local @ quat_matrix(frame.pose.orientation).T + frame.pose.position
        for obj in spec.objects:
            mask = view.instance == obj.id
            if not mask.any():
                continue
            seen_objects += 1
            c, s = math.cos(obj.yaw), math.sin(obj.yaw)
            rel = world_points[mask] - obj.center
            in_box = np.stack(
                [c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1
            )
            assert (np.abs(in_box) <= np.asarray(obj.size) / 2 + 1e-4).all()  # on the object
        room = world_points[view.instance == ROOM_ID]
        on_floor_or_ceiling = (np.abs(room[:, 2]) < 1e-4) | (
            np.abs(room[:, 2] - spec.room.height) < 1e-4
        )
        assert (room[:, 2] > -1e-4).all() and (room[:, 2] < spec.room.height + 1e-4).all()
        poly = np.asarray(spec.room.polygon)
        walls = np.stack([poly, np.roll(poly, -1, 0)], 1)
        to_wall = _distance_to_segments(room[~on_floor_or_ceiling, :2], walls)
        assert (to_wall < 1e-4).all()
    assert seen_objects > 0


def _pinhole(cam):
    return Pinhole(cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy)


def _distance_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    a, b = segments[:, 0], segments[:, 1]
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
    nearest = a + t[..., None] * ab
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(axis=1)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_same_seed_same_bytes_and_no_wall_clock(tmp_path, storage):
    options = WorldOptions(width=24, height=16, frames=3, storage=storage)
    generate_world(tmp_path / 'a', 1, 5, options)
    generate_world(tmp_path / 'b', 1, 5, options)
    a, b = all_files(tmp_path / 'a'), all_files(tmp_path / 'b')
    assert sorted(a) == sorted(b) and len(a) == 3
    for name in a:
        assert a[name] == b[name], name
    # Another seed gives another scene.
    generate_world(tmp_path / 'c', 1, 6, options)
    assert all_files(tmp_path / 'c')['scene_0000/scene.json'] != a['scene_0000/scene.json']
    # No number in the metadata is a time near now (seconds or nanoseconds since the epoch).
    metadata = (tmp_path / 'a' / 'scene_0000' / 'bag' / 'metadata.yaml').read_text()
    now = time.time()
    for digits in re.findall(r'\d{9,}', metadata):
        value = int(digits)
        for scale in (1, 10**3, 10**6, 10**9):
            assert not (now - 3e7 < value / scale < now + 1e5), digits
    assert str(WORLD_EPOCH_NS) in metadata


@pytest.mark.parametrize(
    ('damage', 'message'),
    [
        (lambda d: d.update(objects={}), 'objects: expected a list'),
        (lambda d: d.pop('frames'), "scene: missing key 'frames'"),
        (lambda d: d['objects'][1].pop('label'), r"objects\[1\]: missing key 'label'"),
        (lambda d: d['frames'][2].update(stamp='x'), r'frames\[2\]\.stamp: expected a number'),
    ],
)
def test_a_bad_scene_json_is_refused_naming_the_file_and_field(world, damage, message):
    data = json.loads((world / 'scene_0000' / 'scene.json').read_text())
    damage(data)
    with pytest.raises(DatasetError, match=f'^bad.json: {message}'):
        parse_scene(data, 'bad.json')


def test_refuses_a_non_empty_scene_folder_and_keeps_it(tmp_path):
    out = tmp_path / 'out'
    (out / 'scene_0001').mkdir(parents=True)
    (out / 'scene_0001' / 'keep.txt').write_text('mine')
    with pytest.raises(DatasetError, match='scene_0001'):
        generate_world(out, 2, 0, WorldOptions(width=16, height=12, frames=2))
    assert not (out / 'scene_0000').exists()  # checked before anything is written
    assert (out / 'scene_0001' / 'keep.txt').read_text() == 'mine'
    (out / 'scene_0000').mkdir()  # an empty folder is fine
    generate_world(out, 1, 0, WorldOptions(width=16, height=12, frames=2))
    assert (out / 'scene_0000' / 'scene.json').is_file()


def test_bad_options_are_refused():
    for kwargs in ({'width': 4}, {'frames': 1}, {'rate_hz': 0.0}, {'storage': 'rosbag1'}):
        with pytest.raises(ValueError):
            WorldOptions(**kwargs)


def test_interrupted_scene_is_removed_and_finished_scenes_stay(tmp_path, monkeypatch):
    from spa3r_ros.data.world import generate

    calls = []

    def interrupted_render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the second scene's second frame (2 frames per scene)
            raise KeyboardInterrupt
        return render(*args, **kwargs)

    monkeypatch.setattr(generate, 'render', interrupted_render)
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        generate_world(out, 3, 0, WorldOptions(width=16, height=12, frames=2))
    assert sorted(p.name for p in out.iterdir()) == ['scene_0000']
    assert read_scene(out / 'scene_0000').frames  # the finished scene is complete


def test_cli_exit_130_on_ctrl_c(tmp_path, monkeypatch, capsys):
    from spa3r_ros.cli import world as world_cli

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(world_cli, 'generate_world', interrupt)
    assert world_cli.main([str(tmp_path / 'x'), '--no-progress']) == 130
    assert 'interrupted' in capsys.readouterr().err

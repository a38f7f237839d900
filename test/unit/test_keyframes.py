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

"""Tests for spa3r_ros.scene.keyframes: novelty, motion, eviction for coverage, accounting.

The frames are views of a synthetic panorama (seeded discs and rectangles on a grey background):
a view at ``(x, y)`` is the ``240 x 320`` window at that corner, so moving ``x`` pans the camera.
"""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from spa3r_ros.configs.fields import spec_of
from spa3r_ros.configs.keyframes import DEFAULT_WINDOW, KeyframeConfig, WINDOW_FROM_MODEL
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.core.frame_buffer import Frame
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.scene.keyframes import (
    compute_thumbnail,
    image_distance,
    KeyframeDecision,
    KeyframePolicy,
    REASON_DEPTH,
    REASON_FIRST,
    REASON_NOT_NOVEL,
    REASON_NOVEL,
    REASON_REFRESH,
)
from spa3r_ros.scene.odometry import Pose

VIEW_H, VIEW_W = 240, 320
PANO_H, PANO_W = 480, 1600
# Corners of views that do not overlap: distinct places of the synthetic scene.
PLACES = [(0, 120), (400, 120), (800, 120), (1200, 120)]


def _panorama(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    canvas = np.full((PANO_H, PANO_W, 3), 90.0, np.float32)
    yy, xx = np.mgrid[0:PANO_H, 0:PANO_W]
    for _ in range(70):
        cx, cy = rng.uniform(0, PANO_W), rng.uniform(0, PANO_H)
        r = rng.uniform(15, 60)
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            mask = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < 0.6 * r)
        canvas[mask] = rng.uniform(0, 255, 3)
    return canvas.astype(np.uint8)


PANORAMA = _panorama()


class Camera:
    """Makes frames with increasing seq, like the FrameBuffer does."""

    def __init__(self, name: str = 'cam', noise_seed: int = 0) -> None:
        self.name = name
        self._rng = np.random.default_rng(noise_seed)

    def view(self, x: int, y: int = 120, noise: float = 2.0) -> DecodedImage:
        pixels = PANORAMA[y : y + VIEW_H, x : x + VIEW_W].astype(np.float32)
        pixels += self._rng.normal(0.0, noise, pixels.shape)  # sensor noise
        return DecodedImage('color', np.clip(pixels, 0, 255).astype(np.uint8))


_SEQ = itertools.count(1)


def frame(image: DecodedImage, stamp: float, camera: str = 'cam') -> Frame:
    return Frame(stamp=stamp, camera=camera, image=image, seq=next(_SEQ))


def pose_at(stamp: float, x: float = 0.0, yaw_deg: float = 0.0) -> Pose:
    half = math.radians(yaw_deg) / 2
    return Pose(stamp, np.array([x, 0.0, 0.0]), np.array([0, 0, math.sin(half), math.cos(half)]))


class Tracker:
    """Replays decisions into the keyframe set they imply, to check the policy against it."""

    def __init__(self, policy: KeyframePolicy) -> None:
        self.policy = policy
        self.seqs: set[int] = set()
        self.decisions: list[KeyframeDecision] = []

    def feed(self, f: Frame, pose: Pose | None = None) -> KeyframeDecision:
        version_before = self.policy.version
        decision = self.policy.consider(f, pose)
        self.decisions.append(decision)
        assert decision.seq == f.seq
        assert decision.accepted == (
            decision.reason in (REASON_FIRST, REASON_NOVEL, REASON_REFRESH)
        )
        if decision.accepted:
            assert f.seq not in decision.evicted
            self.seqs.add(f.seq)
            assert self.policy.version == version_before + 1 == decision.version
        else:
            assert decision.evicted == ()
            assert self.policy.version == version_before == decision.version
        for seq in decision.evicted:
            self.seqs.remove(seq)
        keyframes = self.policy.keyframes
        assert {k.seq for k in keyframes} == self.seqs
        assert len(keyframes) <= self.policy.config.window
        stamps = [(k.stamp, k.seq) for k in keyframes]
        assert stamps == sorted(stamps)
        stats = self.policy.stats()
        assert stats.is_consistent(), stats
        assert stats.keyframes == len(keyframes)
        return decision

    def accepted(self) -> list[KeyframeDecision]:
        return [d for d in self.decisions if d.accepted]


# -- descriptor ---------------------------------------------------------------------------------


def test_thumbnail_is_normalised_and_exposure_invariant() -> None:
    cam = Camera()
    image = cam.view(100, noise=0.0)
    thumb = compute_thumbnail(image, 32, 24)
    assert thumb.shape == (24, 32) and thumb.dtype == np.float32
    assert float(thumb.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(np.sqrt(np.mean(thumb**2))) == pytest.approx(1.0, abs=1e-5)
    # Gain and offset (auto-exposure) without clipping leave the descriptor unchanged.
    scaled = DecodedImage('color', (image.pixels // 2 + 40).astype(np.uint8))
    assert image_distance(thumb, compute_thumbnail(scaled, 32, 24)) < 0.01
    inverted = DecodedImage('color', (255 - image.pixels).astype(np.uint8))
    assert image_distance(thumb, compute_thumbnail(inverted, 32, 24)) > 1.9


def test_thumbnail_of_flat_and_tiny_images() -> None:
    flat = DecodedImage('color', np.full((480, 640, 3), 200, np.uint8))
    assert not np.any(compute_thumbnail(flat))
    tiny = DecodedImage('color', np.array([[[0] * 3, [255] * 3], [[255] * 3, [0] * 3]], np.uint8))
    thumb = compute_thumbnail(tiny, 8, 6)  # smaller than the thumbnail: repeated pixels
    assert thumb.shape == (6, 8)
    assert set(np.round(np.unique(thumb), 4)) == {-1.0, 1.0}
    with pytest.raises(ValueError, match='color'):
        compute_thumbnail(DecodedImage('depth', np.ones((4, 4), np.float32)))


# -- acceptance ---------------------------------------------------------------------------------


def test_static_camera_keeps_only_the_first_frame() -> None:
    cam = Camera()
    tracker = Tracker(KeyframePolicy(KeyframeConfig()))
    for i in range(60):  # 2 s at 30 Hz, well inside the default refresh time
        tracker.feed(frame(cam.view(200), stamp=100.0 + i / 30))
    first, *rest = tracker.decisions
    assert first.accepted and first.reason == REASON_FIRST and first.novelty == math.inf
    assert all(d.reason == REASON_NOT_NOVEL and d.novelty < 1.0 for d in rest)
    assert [k.seq for k in tracker.policy.keyframes] == [first.seq]
    assert tracker.policy.version == 1
    stats = tracker.policy.stats()
    assert (stats.seen, stats.accepted, stats.rejected, stats.evicted) == (60, 1, 59, 0)


def test_exposure_change_is_not_a_new_view() -> None:
    cam = Camera()
    policy = KeyframePolicy()
    image = cam.view(300)
    policy.consider(frame(image, 0.0))
    brighter = np.clip(image.pixels.astype(np.float32) * 1.2 + 15, 0, 255).astype(np.uint8)
    decision = policy.consider(frame(DecodedImage('color', brighter), 0.1))
    assert not decision.accepted and decision.image_novelty < policy.config.novelty_threshold


def test_moving_camera_adds_spread_out_keyframes() -> None:
    cam = Camera()
    config = KeyframeConfig(window=256)
    tracker = Tracker(KeyframePolicy(config))
    xs = list(range(0, PANO_W - VIEW_W + 1, 4))
    for i, x in enumerate(xs):
        tracker.feed(frame(cam.view(x), stamp=i / 30))
    accepted = tracker.accepted()
    assert 5 <= len(accepted) < len(xs) // 4
    assert all(d.novelty >= 1.0 for d in accepted[1:])
    assert all(d.novelty < 1.0 for d in tracker.decisions if not d.accepted)
    # With no eviction, every keyframe was novel against all earlier ones: pairwise distances
    # are at least the threshold.
    thumbs = [k.thumbnail for k in tracker.policy.keyframes]
    for a, b in itertools.combinations(thumbs, 2):
        assert image_distance(a, b) >= config.novelty_threshold * (1 - 1e-4)
    # The keyframes cover the whole pan, start to end.
    seq_to_x = {d.seq: x for d, x in zip(tracker.decisions, xs)}
    kf_xs = [seq_to_x[k.seq] for k in tracker.policy.keyframes]
    assert kf_xs[0] == 0 and kf_xs[-1] >= xs[-1] - 160


def test_a_window_from_the_model_is_made_concrete() -> None:
    # 0 (the default) is the model's trained window; a policy, which knows no model, keeps 16.
    assert KeyframeConfig().window == WINDOW_FROM_MODEL == 0
    assert KeyframeConfig().with_window_of(7).window == 7
    assert KeyframeConfig().with_window_of(None).window == DEFAULT_WINDOW == 16
    assert KeyframeConfig(window=3).with_window_of(7).window == 3  # an explicit window wins
    policy = KeyframePolicy()
    assert policy.config.window == DEFAULT_WINDOW
    policy.set_config(KeyframeConfig(window=5))
    assert policy.config.window == 5
    policy.set_config(KeyframeConfig())
    assert policy.config.window == DEFAULT_WINDOW


def test_window_is_respected_and_evictions_are_reported() -> None:
    cam = Camera()
    tracker = Tracker(KeyframePolicy(KeyframeConfig(window=3)))
    for i, x in enumerate(range(0, PANO_W - VIEW_W + 1, 8)):
        tracker.feed(frame(cam.view(x), stamp=i / 30))
    stats = tracker.policy.stats()
    assert len(tracker.policy.keyframes) == 3
    assert stats.accepted > 3 and stats.evicted == stats.accepted - 3
    assert sum(len(d.evicted) for d in tracker.decisions) == stats.evicted


def test_revisit_does_not_evict_the_distinct_early_views() -> None:
    cam = Camera()
    window = 5
    tracker = Tracker(KeyframePolicy(KeyframeConfig(window=window, refresh_sec=0.0)))
    stamp = itertools.count()
    place_seqs = []
    for x, y in PLACES:  # look at four distinct places, a second each
        decisions = [tracker.feed(frame(cam.view(x, y), next(stamp) / 30)) for _ in range(30)]
        assert decisions[0].accepted, 'precondition: the synthetic places are distinct'
        assert not any(d.accepted for d in decisions[1:])
        place_seqs.append(decisions[0].seq)
    # Back at the first place, looking around it (a raster over a 120 x 80 px region, less than
    # half a view: every view still shares most of the first place's content). Only such a
    # revisit keeps the other places' lone views: its views stay about one threshold apart and
    # score low. A wide one (the raster over 120 x 240 px, y in range(0, 241, 40)) adds views
    # as distinct as the places, and then it evicts the second place's only view.
    revisit = [(x, y) for y in range(80, 161, 20) for x in range(0, 121, 8)]
    accepted_on_revisit = [
        d
        for x, y in revisit
        if (d := tracker.feed(frame(cam.view(x, y), next(stamp) / 30))).accepted
    ]
    # Keeping the newest keyframes would have lost every early view by now ...
    assert len(accepted_on_revisit) >= window, 'precondition: the revisit adds many views'
    newest = {d.seq for d in tracker.accepted()[-window:]}
    assert not newest & set(place_seqs[1:])
    # ... while this policy thinned the revisited place and kept the other places' first views.
    kept = {k.seq for k in tracker.policy.keyframes}
    assert set(place_seqs[1:]) <= kept
    assert accepted_on_revisit[-1].seq in kept
    assert len(kept) == window


# -- motion -------------------------------------------------------------------------------------


def test_motion_alone_makes_identical_images_keyframes() -> None:
    cam = Camera()
    image = cam.view(500, noise=0.0)
    config = KeyframeConfig(min_translation_m=0.5, min_rotation_deg=20.0, refresh_sec=0.0)
    tracker = Tracker(KeyframePolicy(config))
    expected = [
        # (x metres, yaw degrees, accepted, motion novelty to the nearest keyframe)
        (0.0, 0.0, True, None),
        (0.2, 0.0, False, 0.4),
        (0.6, 0.0, True, 1.2),
        (0.7, 0.0, False, 0.2),
        (0.7, 25.0, True, 1.25),
        (1.2, 25.0, True, 1.0),
    ]
    for i, (x, yaw, accepted, motion) in enumerate(expected):
        stamp = float(i)
        decision = tracker.feed(frame(image, stamp), pose_at(stamp, x, yaw))
        assert decision.accepted == accepted, (x, yaw, decision)
        if motion is None:
            assert decision.reason == REASON_FIRST
        else:
            assert decision.motion_novelty == pytest.approx(motion)
            assert decision.image_novelty == pytest.approx(0.0, abs=1e-6)
            assert decision.novelty == pytest.approx(motion)
    # Without a pose, or with a pose from another camera, the same image is not new.
    no_pose = tracker.feed(frame(image, 10.0))
    assert not no_pose.accepted and no_pose.motion_novelty is None
    other_camera = tracker.feed(frame(image, 11.0, camera='right'), pose_at(11.0, 50.0))
    assert not other_camera.accepted and other_camera.motion_novelty is None


def test_eviction_weighs_redundancy_and_time_coverage_ties_to_the_older() -> None:
    cam = Camera()
    image = cam.view(700, noise=0.0)

    def run(positions: list[float], window: int) -> tuple[list[int], KeyframeDecision]:
        policy = KeyframePolicy(KeyframeConfig(window=window, min_translation_m=1.0))
        frames = [frame(image, float(i)) for i in range(len(positions))]
        decisions = [policy.consider(f, pose_at(f.stamp, x)) for f, x in zip(frames, positions)]
        assert all(d.accepted for d in decisions)
        return [f.seq for f in frames], decisions[-1]

    # One frame a second at 0, 3, 4 m: the keyframe at 3 m has a neighbour 1 m away and goes,
    # though the first is older (scores: redundancy 3 x time share 2 for the oldest, whose
    # loss would shorten the covered path, against 1 x 1).
    seqs, last = run([0.0, 3.0, 4.0], window=2)
    assert last.evicted == (seqs[1],)
    # 0, 2, 4 m: equally redundant; the middle one covers the shorter stretch of time (an end
    # counts twice), so the window keeps spanning 0 to 4 m.
    seqs, last = run([0.0, 2.0, 4.0], window=2)
    assert last.evicted == (seqs[1],)
    # 0, 2, 4, 6 m: the two middle keyframes score the same: the older goes.
    seqs, last = run([0.0, 2.0, 4.0, 6.0], window=3)
    assert last.evicted == (seqs[1],)


def _drive_strip(width: int = 9000, seed: int = 5) -> np.ndarray:
    """A long textured scene (rectangles of every size) to drive along, ``[240, width, 3]``."""
    rng = np.random.default_rng(seed)
    strip = np.full((VIEW_H, width, 3), 90, np.uint8)
    for _ in range(width // 18):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, VIEW_H), rng.uniform(10, 60)
        rows = slice(max(0, int(cy - 0.6 * r)), int(cy + 0.6 * r) + 1)
        strip[rows, max(0, int(cx - r)) : int(cx + r) + 1] = rng.integers(0, 256, 3)
    return strip


def test_a_forward_drive_keeps_the_whole_path_covered() -> None:
    """13 s of driving forward, fast for the first second: the window spans the whole drive.

    Redundancy alone filled the window in the first second and then evicted each newest
    keyframe in turn (its predecessor is always its nearest neighbour on a sweep), so the last
    half of the drive survived as one frame.
    """
    strip = _drive_strip()
    window, fps, seconds = 16, 30, 13.0
    tracker = Tracker(KeyframePolicy(KeyframeConfig(window=window, refresh_sec=0.0)))
    x = 0.0
    stamps = [i / fps for i in range(int(seconds * fps))]
    for stamp in stamps:
        pixels = np.ascontiguousarray(strip[:, int(x) : int(x) + VIEW_W])
        tracker.feed(frame(DecodedImage('color', pixels), stamp), pose_at(stamp, x / 100))
        x += (600.0 if stamp < 1.0 else 150.0) / fps  # px per second; 100 px per metre
    kept = [k.stamp for k in tracker.policy.keyframes]
    assert len(kept) == window
    assert kept[0] == stamps[0]  # the start of the drive ...
    assert kept[-1] >= stamps[-1] - 0.2  # ... to its end
    # No stretch left empty (at most three even spacings between keyframes), and the second
    # half of the drive holds at least a quarter of the window.
    even = (stamps[-1] - stamps[0]) / (window - 1)
    assert max(b - a for a, b in zip(kept, kept[1:])) <= 3 * even, kept
    assert sum(stamp >= seconds / 2 for stamp in kept) >= window // 4, kept


# -- refresh, depth, accounting ---------------------------------------------------------------


def test_refresh_replaces_a_stale_keyframe_without_growing() -> None:
    cam = Camera()
    tracker = Tracker(KeyframePolicy(KeyframeConfig(refresh_sec=1.0)))
    for i in range(75):  # 2.5 s at 30 Hz
        tracker.feed(frame(cam.view(900), stamp=i / 30))
    refreshes = [d for d in tracker.decisions if d.reason == REASON_REFRESH]
    assert len(refreshes) == 2
    first = tracker.decisions[0]
    assert refreshes[0].evicted == (first.seq,) and refreshes[1].evicted == (refreshes[0].seq,)
    assert [k.seq for k in tracker.policy.keyframes] == [refreshes[1].seq]
    assert tracker.policy.keyframes[0].stamp == pytest.approx(2.0, abs=1 / 30 + 1e-9)


def test_depth_frames_are_seen_and_rejected() -> None:
    cam = Camera()
    tracker = Tracker(KeyframePolicy())
    depth = DecodedImage('depth', np.full((VIEW_H, VIEW_W), 1.5, np.float32))
    decision = tracker.feed(frame(depth, 0.0))
    assert decision.reason == REASON_DEPTH and not decision.accepted
    assert tracker.policy.keyframes == () and tracker.policy.version == 0
    assert tracker.feed(frame(cam.view(0), 0.1)).reason == REASON_FIRST
    tracker.feed(frame(depth, 0.2))
    stats = tracker.policy.stats()
    assert (stats.seen, stats.accepted, stats.rejected, stats.depth_rejected) == (3, 1, 2, 2)


def test_accounting_holds_on_a_mixed_two_camera_stream() -> None:
    left, right = Camera('left', 1), Camera('right', 2)
    rng = np.random.default_rng(7)
    tracker = Tracker(KeyframePolicy(KeyframeConfig(window=4, refresh_sec=0.5)))
    depth = DecodedImage('depth', np.ones((8, 8), np.float32))
    x = 0
    for i in range(240):
        stamp = i / 60 + rng.uniform(-0.01, 0.01)  # the two cameras' stamps interleave unevenly
        x = int(np.clip(x + rng.integers(-30, 40), 0, PANO_W - VIEW_W))
        camera = left if i % 2 == 0 else right
        kind = rng.random()
        if kind < 0.1:
            tracker.feed(frame(depth, stamp, camera.name))
        elif kind < 0.5:
            pose = pose_at(stamp, x / 100, yaw_deg=rng.uniform(-5, 5))
            tracker.feed(frame(camera.view(x), stamp, camera.name), pose)
        else:
            tracker.feed(frame(camera.view(x, y=int(rng.integers(0, 241))), stamp, camera.name))
    stats = tracker.policy.stats()
    assert stats.seen == 240 and stats.accepted > 4 and stats.rejected > 0
    assert stats.depth_rejected > 0 and stats.evicted == stats.accepted - 4
    assert {k.camera for k in tracker.policy.keyframes} <= {'left', 'right'}


def test_reset_empties_the_set_and_keeps_the_version_increasing() -> None:
    cam = Camera()
    policy = KeyframePolicy(KeyframeConfig(window=8))
    for i, x in enumerate(PLACES):
        policy.consider(frame(cam.view(*x), float(i)))
    held, version = len(policy.keyframes), policy.version
    assert held == 4
    policy.reset()
    assert policy.keyframes == () and policy.version == version + 1
    stats = policy.stats()
    assert stats.evicted == held and stats.is_consistent()
    policy.reset()  # nothing held: nothing changed
    assert policy.version == version + 1
    policy.consider(frame(cam.view(0), 10.0))
    policy.reset(reset_stats=True)
    assert policy.stats() == type(stats)(0, 0, 0, 0, 0, 0)
    assert policy.version == version + 3
    assert policy.snapshot() == (policy.version, ())


def test_set_config_shrinks_the_window_and_keeps_the_newest() -> None:
    cam = Camera()
    policy = KeyframePolicy(KeyframeConfig(window=8))
    frames = [frame(cam.view(*p), float(i)) for i, p in enumerate(PLACES)]
    for f in frames:
        policy.consider(f)
    version = policy.version
    evicted = policy.set_config(KeyframeConfig(window=2))
    assert len(evicted) == 2 and len(policy.keyframes) == 2
    assert frames[-1].seq in {k.seq for k in policy.keyframes}
    assert policy.version == version + 1 and policy.stats().is_consistent()
    assert policy.set_config(KeyframeConfig(window=2, novelty_threshold=1.9)) == ()
    # A huge threshold: a new place is no longer novel (the refresh time is far away).
    assert not policy.consider(frame(cam.view(600, 0), 5.0)).accepted
    with pytest.raises(ConfigError, match='thumbnail size'):
        policy.set_config(KeyframeConfig(thumbnail_width=16))


def test_consider_rejects_wrong_types_without_counting() -> None:
    policy = KeyframePolicy()
    with pytest.raises(TypeError, match='Frame'):
        policy.consider('frame')  # type: ignore[arg-type]
    with pytest.raises(TypeError, match='Pose'):
        policy.consider(frame(Camera().view(0), 0.0), pose=(0, 0, 0))  # type: ignore[arg-type]
    assert policy.stats().seen == 0


# -- configuration ------------------------------------------------------------------------------


def test_config_defaults_and_field_metadata() -> None:
    config = KeyframeConfig()
    assert config.window == WINDOW_FROM_MODEL  # the model's (see the test above)
    for field in dataclasses.fields(KeyframeConfig):
        spec = spec_of(field)
        assert spec is not None and spec.description.strip(), field.name
        assert spec.bounds is not None, field.name
    window_spec = spec_of(next(f for f in dataclasses.fields(config) if f.name == 'window'))
    assert window_spec is not None and window_spec.bounds == (0, 256)


@pytest.mark.parametrize(
    ('field', 'value'),
    [
        ('window', -1),
        ('window', 257),
        ('window', 2.5),
        ('window', True),
        ('novelty_threshold', 0.0),
        ('novelty_threshold', math.nan),
        ('min_translation_m', -1.0),
        ('min_rotation_deg', 200.0),
        ('refresh_sec', -0.1),
        ('pose_max_gap_sec', 0.0),
        ('thumbnail_width', 2),
        ('thumbnail_height', 1000),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f'KeyframeConfig.{field}'):
        KeyframeConfig(**{field: value})


def test_restore_puts_saved_keyframes_back_for_later_comparisons() -> None:
    cam = Camera()
    policy = KeyframePolicy(KeyframeConfig(window=3, refresh_sec=0.0))
    policy.consider(frame(cam.view(0), 0.0))
    version = policy.version
    saved = [frame(cam.view(*p), 10.0 + i) for i, p in enumerate(PLACES)]
    poses = [pose_at(f.stamp, float(i)) for i, f in enumerate(saved)]
    evicted = policy.restore(reversed(saved), list(reversed(poses)))
    assert policy.version == version + 1
    # Four saved frames, a window of three: one goes, never the newest.
    assert len(evicted) == 1 and saved[-1].seq not in evicted
    kept = [k.seq for k in policy.keyframes]
    assert kept == [f.seq for f in saved if f.seq not in evicted]
    assert all(k.pose is not None for k in policy.keyframes)
    stats = policy.stats()
    assert (stats.restored, stats.accepted, stats.evicted, stats.keyframes) == (4, 1, 2, 3)
    assert stats.is_consistent()
    # A later frame showing a restored place is not new.
    again = policy.consider(frame(cam.view(*PLACES[-1]), 20.0))
    assert not again.accepted and again.novelty < 1.0


def test_restore_validates_before_changing_anything() -> None:
    cam = Camera()
    policy = KeyframePolicy()
    policy.consider(frame(cam.view(0), 0.0))
    before = policy.snapshot()
    depth = DecodedImage('depth', np.ones((4, 4), np.float32))
    good = frame(cam.view(400), 1.0)
    with pytest.raises(ValueError, match='depth'):
        policy.restore([good, frame(depth, 2.0)])
    with pytest.raises(ValueError, match='2 frames but 1 poses'):
        policy.restore([good, frame(cam.view(800), 2.0)], [None])
    with pytest.raises(ValueError, match='share a seq'):
        policy.restore([good, good])
    with pytest.raises(TypeError, match='Frames'):
        policy.restore(['frame'])  # type: ignore[list-item]
    assert policy.snapshot() == before
    assert policy.restore([]) == () and policy.keyframes == ()

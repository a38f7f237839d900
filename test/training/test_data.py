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


"""The streaming clip pipeline of the training package (spa3r_ros/training/data.py).

Tiny bags only: write_demo_bag at 98 x 56, a few dozen frames, laid out as ``spa3r world`` writes
them (``OUT/scene_XXXX/bag``). The geometry width is 56, so frames preprocess to 28 x 56.
"""

import dataclasses
import pickle
import tracemalloc

import numpy as np
import pytest
import torch

from spa3r_ros.configs.clips import ClipDataConfig
from spa3r_ros.core.errors import ConfigError, DatasetError
from spa3r_ros.data.bag_writer import BagWriter
from spa3r_ros.data.demo_scene import (
    DEMO_EPOCH_NS,
    demo_intrinsics,
    render_demo_frame,
    write_demo_bag,
)
from spa3r_ros.data.rosbag_io import (
    BagReader,
    CAMERA_INFO_MSGTYPE,
    image_from_bag_message,
    IMAGE_MSGTYPE,
)
from spa3r_ros.models.preprocess import preprocess_frame
from spa3r_ros.training.data import (
    ClipDataset,
    expand_sources,
    fit_to_hw,
    INTERVAL_FILE,
    make_loader,
    preprocessed_hw,
    sample_frames,
)

WIDTH, HEIGHT = 98, 56
GEOMETRY_WIDTH = 56
IMAGE_HW = (28, 56)
CONFIG = ClipDataConfig(
    views_min=2,
    views_max=4,
    images_per_batch=8,
    frame_interval_min=1,
    frame_interval_max=3,
    frames_per_clip=4,
    seed=7,
)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """``spa3r world`` output shape: three scenes of 32 frames, ``OUT/scene_XXXX/bag``."""
    out = tmp_path_factory.mktemp('world')
    for i in range(3):
        write_demo_bag(out / f'scene_{i:04d}' / 'bag', num_frames=32, width=WIDTH, height=HEIGHT)
    return out


def _dataset(world, config=CONFIG, **kwargs):
    kwargs.setdefault('image_hw', IMAGE_HW)
    return ClipDataset(expand_sources([world]), config, **kwargs)


def _epoch(dataset, num_workers=0):
    return list(make_loader(dataset, num_workers))


def _same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for a, b in zip(batches_a, batches_b):
        assert a['clip_ids'] == b['clip_ids']
        assert a['position'] == b['position']
        assert torch.equal(a['images'], b['images'])


# -- sources ---------------------------------------------------------------------------------


def test_expand_sources_finds_world_scenes_bag_files_sorted_once(world, tmp_path):
    loose = write_demo_bag(tmp_path / 'loose', num_frames=2, storage='sqlite3')
    db3 = next(loose.glob('*.db3'))
    scene = world / 'scene_0001' / 'bag'
    found = expand_sources([scene, world, db3, world / 'scene_0000', loose])
    expected = sorted([*(world / f'scene_{i:04d}' / 'bag' for i in range(3)), loose])
    # The .db3 inside a listed bag folder is that bag, not a second one.
    assert found == [p.resolve() for p in expected]
    assert expand_sources([db3]) == [db3.resolve()]


def test_expand_sources_names_a_path_without_bags(tmp_path):
    with pytest.raises(DatasetError, match='missing'):
        expand_sources([tmp_path / 'missing'])
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no bag here')
    with pytest.raises(DatasetError, match='empty.*holds no bag'):
        expand_sources([empty])


def _write_bag_without_images(path, *, empty_camera_topic):
    with BagWriter(path) as bag:
        bag.add_topic('/camera/camera_info', CAMERA_INFO_MSGTYPE)
        if empty_camera_topic:
            bag.add_topic('/camera/image_raw', IMAGE_MSGTYPE)
        k = demo_intrinsics(WIDTH, HEIGHT)
        for i in range(3):
            stamp = DEMO_EPOCH_NS + i * 10**8
            bag.write('/camera/camera_info', stamp, bag.camera_info(k, WIDTH, HEIGHT, stamp, 'c'))
    return path


@pytest.mark.parametrize('empty_camera_topic', [False, True])
def test_a_bag_without_usable_camera_topic_is_an_error_naming_it(
    world, tmp_path, empty_camera_topic
):
    bad = _write_bag_without_images(tmp_path / 'no_camera', empty_camera_topic=empty_camera_topic)
    with pytest.raises(DatasetError, match='no_camera.*camera topic'):
        ClipDataset(expand_sources([world, bad]), CONFIG, image_hw=IMAGE_HW)


def test_too_few_clips_for_one_batch_per_rank_is_an_error(world):
    config = dataclasses.replace(CONFIG, frames_per_clip=0)  # 3 clips; batches of up to 4
    with pytest.raises(DatasetError, match='cannot fill one batch'):
        _dataset(world, config)


# -- index -----------------------------------------------------------------------------------


def test_the_index_streams_and_holds_no_pixels(tmp_path):
    frames = 1000
    bag = write_demo_bag(
        tmp_path / 'long', num_frames=frames, odom_topic=None, camera_info_topic=None
    )
    pixel_bytes = frames * WIDTH * HEIGHT * 3
    tracemalloc.start()
    try:
        dataset = ClipDataset([bag], CONFIG, image_hw=IMAGE_HW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (source,) = dataset.sources
    assert source.num_frames == frames
    assert np.all(np.diff(source.stamps_ns) > 0)
    # Times and duplicate ranks only: 12 bytes a frame, and the whole dataset pickles small.
    assert source.stamps_ns.nbytes + source.duplicates.nbytes == 12 * frames
    assert len(pickle.dumps(dataset)) < 32 * frames
    # Reading streamed the bag: never more than a fraction of its pixels in memory at once.
    assert peak < pixel_bytes / 4, (peak, pixel_bytes)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_messages_with_the_same_recording_time_are_told_apart(tmp_path, storage):
    times = [0, 1, 1, 1, 2]  # three frames recorded in the same nanosecond
    with BagWriter(tmp_path / 'bag', storage=storage) as bag:
        bag.add_topic('/camera/image_raw', IMAGE_MSGTYPE)
        for i, t in enumerate(times):
            rgb, _ = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=10.0)
            bag.write('/camera/image_raw', DEMO_EPOCH_NS + t, bag.image(rgb, DEMO_EPOCH_NS, 'c'))
    config = dataclasses.replace(CONFIG, images_per_batch=2, frames_per_clip=1)
    dataset = ClipDataset([tmp_path / 'bag'], config, image_hw=IMAGE_HW)
    assert dataset.sources[0].duplicates.tolist() == [0, 0, 1, 2, 0]
    frames = [render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=10.0)[0] for i in (1, 2, 3)]
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    for i in range(len(times)):
        msg = BagReader(tmp_path / 'bag').typestore.deserialize_cdr(
            dataset.read_message(0, i), IMAGE_MSGTYPE
        )
        rgb, _ = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=10.0)
        assert np.array_equal(image_from_bag_message(msg, IMAGE_MSGTYPE).pixels, rgb)


def test_every_camera_topic_is_a_source_and_topics_can_be_named(tmp_path):
    bag = write_demo_bag(
        tmp_path / 'two', num_frames=12, compressed_topic='/camera/compressed', depth_topic='/d'
    )
    config = dataclasses.replace(CONFIG, images_per_batch=4)
    raw_only = ClipDataset([bag], config, image_hw=IMAGE_HW)
    assert [s.topic for s in raw_only.sources] == ['/camera/image_raw']  # depth never a camera
    compressed = ClipDataset([bag], config, image_hw=IMAGE_HW, image_topics=['/camera/compressed'])
    assert [s.topic for s in compressed.sources] == ['/camera/compressed']
    batch = next(iter(make_loader(compressed, 0)))
    assert batch['images'].shape[-2:] == IMAGE_HW and batch['stats']['corrupt_messages'] == 0


# -- sampling --------------------------------------------------------------------------------


def test_sample_frames_follows_the_reference_cases():
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = sample_frames(rng, 100, 5, 2, 6)
        steps = np.diff(frames)
        assert len(frames) == 5 and frames[-1] < 100 and steps.min() >= 2 and steps.max() <= 6
    # hi is capped so that n views always fit: 9 frames, 5 views -> steps of exactly 2.
    assert sample_frames(rng, 9, 5, 2, 6) == [0, 2, 4, 6, 8]
    # A start range past the last start that fits gives that start (a long bag's last slots).
    assert sample_frames(rng, 20, 3, 2, 2, start_range=(18, 19)) == [15, 17, 19]
    assert sample_frames(rng, 20, 3, 2, 2, start_range=(4, 4)) == [4, 6, 8]
    few = sample_frames(rng, 3, 6, 2, 6)  # fewer frames than views: with replacement, sorted
    assert len(few) == 6 and few == sorted(few) and set(few) <= {0, 1, 2}
    distinct = sample_frames(rng, 6, 5, 2, 6)  # (n - 1) * lo >= N: distinct frames, sorted
    assert distinct == sorted(set(distinct)) and len(distinct) == 5


def test_view_count_per_batch_within_bounds_and_batch_size_follows(world):
    dataset = _dataset(world)
    seen = set()
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for batch in _epoch(dataset):
            clips, views = batch['images'].shape[:2]
            assert CONFIG.views_min <= views <= CONFIG.views_max
            assert clips == CONFIG.images_per_batch // views
            assert len(batch['clip_ids']) == clips
            seen.add(views)
    assert len(seen) > 1  # drawn per batch, not fixed


def test_interval_bounds_respected_and_overridable_per_source(world, tmp_path):
    dataset = _dataset(world)
    steps = [np.diff(frames) for b in _epoch(dataset) for _, frames in b['clip_ids']]
    steps = np.concatenate(steps)
    assert steps.min() >= CONFIG.frame_interval_min and steps.max() <= CONFIG.frame_interval_max

    # A spa3r_clips.yaml next to a scene (or above it) sets that scene's interval.
    override = tmp_path / 'sparse'
    write_demo_bag(override / 'bag', num_frames=60, width=WIDTH, height=HEIGHT)
    (override / INTERVAL_FILE).write_text('frame_interval_min: 5\nframe_interval_max: 6\n')
    mixed = ClipDataset(expand_sources([world, override]), CONFIG, image_hw=IMAGE_HW)
    by_source = {i: s.interval for i, s in enumerate(mixed.sources)}
    assert sorted(by_source.values()).count((5, 6)) == 1
    for epoch in range(2):
        mixed.set_epoch(epoch)
        for batch in _epoch(mixed):
            for index, frames in batch['clip_ids']:
                lo, hi = by_source[index]
                diffs = np.diff(frames)
                assert diffs.min() >= lo and diffs.max() <= hi, (index, frames)

    # The mapping argument wins over the file; a bad file is an error naming it.
    mapped = ClipDataset(
        expand_sources([override]),
        dataclasses.replace(CONFIG, images_per_batch=4),
        image_hw=IMAGE_HW,
        interval_overrides={override / 'bag': (2, 2)},
    )
    assert mapped.sources[0].interval == (2, 2)
    (override / INTERVAL_FILE).write_text('frame_interval_min: 7\nframe_interval_max: 3\n')
    with pytest.raises(DatasetError, match=INTERVAL_FILE):
        ClipDataset(expand_sources([override]), CONFIG, image_hw=IMAGE_HW)


# -- sharding, reproducibility, resume -------------------------------------------------------


def test_two_ranks_two_workers_see_each_clip_of_the_epoch_once(world):
    for epoch in (0, 1):
        slots, clip_ids, counts = [], [], []
        for rank in range(2):
            dataset = _dataset(world, rank=rank, world_size=2)
            dataset.set_epoch(epoch)
            batches = _epoch(dataset, num_workers=2)
            counts.append(len(batches))
            assert [b['position']['batch'] for b in batches] == list(range(1, len(batches) + 1))
            slots += [s for b in batches for s in b['clip_slots']]
            clip_ids += [c for b in batches for c in b['clip_ids']]
        assert counts[0] == counts[1] == dataset.batches_per_epoch == len(dataset) > 0
        assert len(slots) == len(set(slots))
        assert len(clip_ids) == len(set(clip_ids))
        assert set(slots) == set(dataset.epoch_slots(epoch))
        # The dropped remainder is smaller than one global step (2 ranks x the largest batch).
        assert dataset.num_slots - len(slots) < 2 * 2 * CONFIG.images_per_batch // CONFIG.views_min


def test_workers_do_not_change_the_batches(world):
    _same(_epoch(_dataset(world), 0), _epoch(_dataset(world), 2))


def test_batches_are_reproducible_from_the_seed(world):
    first = _epoch(_dataset(world))
    _same(first, _epoch(_dataset(world)))
    other_seed = _epoch(_dataset(world, dataclasses.replace(CONFIG, seed=8)))
    assert [b['clip_ids'] for b in first] != [b['clip_ids'] for b in other_seed]
    next_epoch = _dataset(world)
    next_epoch.set_epoch(1)
    assert [b['clip_ids'] for b in first] != [b['clip_ids'] for b in _epoch(next_epoch)]


@pytest.mark.parametrize('num_workers', [0, 2])
def test_resume_sees_exactly_the_batches_a_straight_run_sees(world, num_workers):
    straight = _dataset(world, rank=1, world_size=2)
    epochs = []
    for epoch in range(2):
        straight.set_epoch(epoch)
        epochs.append(_epoch(straight, num_workers))
    assert straight.state_dict() == {'epoch': 1, 'batch': straight.batches_per_epoch}

    interrupted = _dataset(world, rank=1, world_size=2)
    interrupted.set_epoch(0)
    loader = make_loader(interrupted, num_workers)
    stop = 3  # an odd position, so the first resumed batch is not worker 0's in the old run
    assert interrupted.batches_per_epoch > stop
    seen = []
    for batch in loader:
        seen.append(batch)
        if len(seen) == stop:
            break
    state = interrupted.state_dict()
    assert state == {'epoch': 0, 'batch': stop}

    resumed = _dataset(world, rank=1, world_size=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # a trainer's top-of-epoch call keeps the resume position
    rest = _epoch(resumed, num_workers)
    resumed.set_epoch(1)
    _same(seen + rest, epochs[0])
    _same(_epoch(resumed, num_workers), epochs[1])


# -- pixels ----------------------------------------------------------------------------------


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_images_are_the_inference_preprocessing_of_the_named_frames(tmp_path, storage):
    bag = write_demo_bag(tmp_path / 'bag', num_frames=16, storage=storage)
    config = dataclasses.replace(CONFIG, images_per_batch=4)
    assert preprocessed_hw((HEIGHT, WIDTH), GEOMETRY_WIDTH) == IMAGE_HW
    dataset = ClipDataset([bag], config, image_hw=IMAGE_HW)
    taller = ClipDataset([bag], config, image_hw=(42, 56))  # padded rows
    with BagReader(bag) as reader:
        pixels = [
            image_from_bag_message(m.msg, m.msgtype).pixels
            for m in reader.messages(['/camera/image_raw'])
        ]
    for batch, padded in zip(_epoch(dataset), _epoch(taller)):
        assert batch['images'].dtype == torch.float32
        for clip, tall_clip, (_, frames) in zip(
            batch['images'], padded['images'], batch['clip_ids']
        ):
            for image, tall, frame in zip(clip, tall_clip, frames):
                expected = preprocess_frame(pixels[frame], 'crop', GEOMETRY_WIDTH)
                assert torch.equal(image, expected)
                assert torch.equal(tall[:, 7:35], expected)
                assert torch.all(tall[:, :7] == 1.0) and torch.all(tall[:, 35:] == 1.0)


def test_fit_to_hw_crops_centred_and_pads_white():
    image = torch.arange(3 * 6 * 4, dtype=torch.float32).reshape(3, 6, 4) / 100
    assert torch.equal(fit_to_hw(image, 4, 4), image[:, 1:5])
    padded = fit_to_hw(image, 8, 6)
    assert torch.equal(padded[:, 1:7, 1:5], image)
    assert padded.sum() == image.sum() + 3 * (8 * 6 - 6 * 4)


# -- corrupt messages ------------------------------------------------------------------------


def _write_bag_with_corrupt_frames(path, num_frames, corrupt):
    """A camera bag whose frames in ``corrupt`` carry truncated pixel data (bad size)."""
    with BagWriter(path) as bag:
        bag.add_topic('/camera/image_raw', IMAGE_MSGTYPE)
        for i in range(num_frames):
            stamp = DEMO_EPOCH_NS + i * 10**8
            rgb, _ = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=10.0)
            msg = bag.image(rgb, stamp, 'camera')
            if i in corrupt:
                msg = dataclasses.replace(msg, data=msg.data[:100])
            bag.write('/camera/image_raw', stamp, msg)
    return path


@pytest.mark.parametrize('num_workers', [0, 2])
def test_corrupt_messages_are_counted_and_never_used(tmp_path, num_workers):
    corrupt = {5, 11, 12}
    bag = _write_bag_with_corrupt_frames(tmp_path / 'bag', 24, corrupt)
    config = dataclasses.replace(
        CONFIG, views_max=2, images_per_batch=4, frames_per_clip=1, max_redraws=8
    )
    dataset = ClipDataset([bag], config, image_hw=IMAGE_HW)
    totals = dict.fromkeys(dataset.stats, 0)
    for epoch in range(2):
        dataset.set_epoch(epoch)
        for batch in _epoch(dataset, num_workers):
            for _, frames in batch['clip_ids']:
                assert not corrupt & set(frames)
            assert batch['images'].shape[0] == len(batch['clip_ids'])
            for key, value in batch['stats'].items():
                totals[key] += value
    assert totals['corrupt_messages'] > 0
    assert totals['redrawn_clips'] + totals['dropped_clips'] == totals['corrupt_messages']
    assert dataset.stats == totals  # the training process's counts, with or without workers


def test_a_clip_that_keeps_meeting_corrupt_messages_is_dropped(tmp_path):
    bag = _write_bag_with_corrupt_frames(tmp_path / 'bag', 16, corrupt={0, 1, 2, 3, 4, 5, 6, 7})
    config = dataclasses.replace(
        CONFIG, views_min=16, views_max=16, images_per_batch=16, frames_per_clip=0, max_redraws=1
    )
    # One 16-view clip of 16 frames needs every frame: it cannot be built.
    dataset = ClipDataset([bag], config, image_hw=IMAGE_HW)
    with pytest.raises(DatasetError, match='every clip met corrupt messages'):
        _epoch(dataset)
    assert dataset.stats == {'corrupt_messages': 2, 'redrawn_clips': 1, 'dropped_clips': 1}


def test_the_added_config_fields_are_validated():
    assert ClipDataConfig().frames_per_clip == 32 and ClipDataConfig().max_redraws == 4
    for field, value in (('frames_per_clip', -1), ('max_redraws', 101)):
        with pytest.raises(ConfigError, match=field):
            ClipDataConfig(**{field: value})

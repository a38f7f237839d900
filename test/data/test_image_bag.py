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

"""``spa3r bag``: images, animations, motion-JPEG, video -> rosbag2 -> read back with BagReader."""

import io
import os
from pathlib import Path
import sys

import numpy as np
from PIL import Image
import pytest

from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data import image_bag
from spa3r_ros.data.image_bag import (
    BagOptions,
    Intrinsics,
    natural_key,
    open_source,
    to_rgb,
    write_image_bag,
)
from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message

START = 1_704_067_200.0
W, H = 48, 32


def frame_pixels(index: int, width: int = W, height: int = H) -> np.ndarray:
    """A distinct, smooth image per index (so JPEG keeps it recognisable): [H, W, 3] uint8."""
    rows = np.linspace(0, 1, height)[:, None]
    cols = np.linspace(0, 1, width)[None, :]
    rgb = np.stack([rows * 200 + 0 * cols, cols * 200 + 0 * rows, np.full((height, width), 0.0)])
    rgb = rgb.transpose(1, 2, 0)
    rgb[..., 2] = 20 * index
    return rgb.astype(np.uint8)


def read_frames(bag: Path, topic: str = '/camera/image_raw'):
    with BagReader(bag) as reader:
        messages = list(reader.messages([topic]))
        return reader.topics(), [
            (m.stamp_ns, m.msg, image_from_bag_message(m.msg, m.msgtype).pixels) for m in messages
        ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Frames 0..11 as PNG files named so that plain sorting would misorder them."""
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(12):
        Image.fromarray(frame_pixels(i)).save(folder / f'frame{i}.png')
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'sub').mkdir()
    return folder


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_image_folder_to_bag_and_back(folder: Path, tmp_path: Path, storage: str, capsys):
    out = tmp_path / 'bag'
    argv = ['bag', str(folder), str(out), '--rate', '4', '--start', str(START)]
    argv += ['--intrinsics', '50,51,23.5,15.5', '--storage', storage]
    assert spa3r_main(argv) == 0
    printed = capsys.readouterr().out
    assert '12 frames 48x32 (raw rgb8)' in printed and 'left out 2 entries' in printed
    topics, frames = read_frames(out)
    assert topics['/camera/image_raw'] == ('sensor_msgs/msg/Image', 12)
    assert topics['/camera/camera_info'] == ('sensor_msgs/msg/CameraInfo', 12)
    for i, (stamp_ns, msg, pixels) in enumerate(frames):
        # Natural order (frame2 before frame10), stamps from the rate, header = recording time.
        np.testing.assert_array_equal(pixels, frame_pixels(i))
        assert stamp_ns == round(START * 1e9) + round(i / 4 * 1e9)
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp_ns
        assert msg.encoding == 'rgb8' and msg.header.frame_id == 'camera'
    with BagReader(out) as reader:
        info = next(iter(reader.messages(['/camera/camera_info']))).msg
    assert (info.width, info.height) == (W, H)
    np.testing.assert_allclose(info.k, [50, 0, 23.5, 0, 51, 15.5, 0, 0, 1])


@pytest.mark.parametrize('fmt', ['jpeg', 'png'])
def test_compressed_formats(folder: Path, tmp_path: Path, fmt: str):
    out = tmp_path / 'bag'
    assert spa3r_main(['bag', str(folder), str(out), '--format', fmt, '--start', '0']) == 0
    topics, frames = read_frames(out, '/camera/image_raw/compressed')
    assert topics == {'/camera/image_raw/compressed': ('sensor_msgs/msg/CompressedImage', 12)}
    for i, (stamp_ns, msg, pixels) in enumerate(frames):
        assert msg.format == fmt and stamp_ns == round(i * 0.1 * 1e9)  # 10 Hz by default
        error = np.abs(pixels.astype(int) - frame_pixels(i)).max()
        assert error == 0 if fmt == 'png' else error < 12


def test_exif_orientation_is_applied(tmp_path: Path):
    upright = frame_pixels(3, 40, 30)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # [40, 30]: as a camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the stored image is turned 90 deg CCW
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, 'PNG', exif=exif)
    rgb = to_rgb(Image.open(io.BytesIO(buf.getvalue())))
    np.testing.assert_array_equal(rgb, upright)


@pytest.mark.parametrize('mode', ['CMYK', 'P', 'L', 'LA', 'RGBA', '1', 'I;16', 'I', 'F'])
def test_every_pixel_format_becomes_rgb8(mode: str):
    grey = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (8, 1))
    if mode == 'I;16':
        image = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode == 'I':
        image = Image.fromarray(grey.astype(np.int32) * 257)
    elif mode == 'F':
        image = Image.fromarray(grey.astype(np.float32) / 255.0)
    else:
        image = Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).convert(mode)
    rgb = to_rgb(image)
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 16, 3)
    if mode not in ('1', 'P'):  # 1-bit and palette quantise
        assert np.abs(rgb.astype(int).mean(axis=2) - grey).max() <= 2, mode


def test_mixed_sizes_are_refused_by_default_and_nothing_is_left(folder: Path, tmp_path: Path):
    Image.fromarray(frame_pixels(99, W * 2, H * 2)).save(folder / 'frame5.png')
    Image.fromarray(frame_pixels(98, H, W)).save(folder / 'frame7.png')  # portrait
    out = tmp_path / 'bag'
    with pytest.raises(DatasetError, match=r'frame5.png is 96x64, the first frame 48x32'):
        write_image_bag(open_source(folder), out, BagOptions(start_sec=START))
    assert not out.exists()  # the partly written bag was removed
    # resize: same aspect ratio resized, a portrait frame still refused.
    with pytest.raises(DatasetError, match=r'frame7.png is 32x48.*aspect ratio differs'):
        write_image_bag(open_source(folder), out, BagOptions(mixed_sizes='resize'))
    assert not out.exists()
    (folder / 'frame7.png').unlink()
    summary = write_image_bag(open_source(folder), out, BagOptions(mixed_sizes='resize'))
    assert (summary.frames, summary.resized, summary.width, summary.height) == (11, 1, W, H)


def test_max_side_scales_frames_and_camera_info(folder: Path, tmp_path: Path):
    out = tmp_path / 'bag'
    options = BagOptions(
        max_side=24,
        every=3,
        camera_info_topic='/cam/info',
        intrinsics=Intrinsics(50, 50, 23.5, 15.5, W, H),
    )
    summary = write_image_bag(open_source(folder), out, options)
    assert (summary.frames, summary.width, summary.height) == (4, 24, 16)
    with BagReader(out) as reader:
        info = next(iter(reader.messages(['/cam/info']))).msg
        images = [m.msg for m in reader.messages(['/camera/image_raw'])]
    assert [(m.width, m.height) for m in images] == [(24, 16)] * 4
    np.testing.assert_allclose(info.k, [25, 0, 11.5, 0, 25, 7.5, 0, 0, 1])


@pytest.mark.parametrize('kind', ['folder', 'gif', 'mjpeg'])
def test_frames_left_out_are_not_converted(tmp_path: Path, monkeypatch, kind: str):
    images = [Image.fromarray(frame_pixels(i)) for i in range(12)]
    if kind == 'folder':
        source = tmp_path / 'images'
        source.mkdir()
        for i, image in enumerate(images):
            image.save(source / f'frame{i}.png')
    elif kind == 'gif':
        source = tmp_path / 'anim.gif'
        images[0].save(source, save_all=True, append_images=images[1:], duration=100, loop=0)
    else:
        source = tmp_path / 'stream.mjpg'
        with open(source, 'wb') as stream:
            for image in images:
                image.save(stream, 'JPEG', quality=95)
    converted = []
    convert = image_bag.to_rgb
    monkeypatch.setattr(image_bag, 'to_rgb', lambda image: converted.append(1) or convert(image))
    out = tmp_path / 'bag'
    summary = write_image_bag(open_source(source), out, BagOptions(every=3, max_frames=3))
    assert summary.frames == 3 and len(converted) == 3  # frames 0, 3 and 6 only
    _, read = read_frames(out)
    # Blue is 20 * index in frame_pixels: the frames kept are 0, 3 and 6.
    assert [round(float(pixels[..., 2].mean()) / 20) for _, _, pixels in read] == [0, 3, 6]


def test_camera_info_yaml(folder: Path, tmp_path: Path):
    calibration = tmp_path / 'camera.yaml'
    calibration.write_text(
        'image_width: 48\nimage_height: 32\ncamera_name: front\n'
        'camera_matrix: {rows: 3, cols: 3, data: [40, 0, 24, 0, 41, 16, 0, 0, 1]}\n'
        'distortion_model: plumb_bob\n'
        'distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0, 0, 0.05]}\n'
    )
    out = tmp_path / 'bag'
    argv = ['bag', str(folder), str(out), '--camera-info', str(calibration), '--max-frames', '2']
    assert spa3r_main(argv) == 0
    with BagReader(out) as reader:
        infos = [m.msg for m in reader.messages(['/camera/camera_info'])]
    assert len(infos) == 2
    np.testing.assert_allclose(infos[0].d, [0.1, -0.2, 0, 0, 0.05])
    np.testing.assert_allclose(infos[0].k[[0, 2, 4, 5]], [40, 24, 41, 16])
    calibration.write_text('image_width: 640\nimage_height: 480\ncamera_matrix: {data: [1, 2]}\n')
    with pytest.raises(DatasetError, match='camera_matrix.data'):
        Intrinsics.from_yaml(calibration)


def test_animated_gif_and_mjpeg_stream(tmp_path: Path):
    frames = [Image.fromarray(frame_pixels(i)) for i in range(5)]
    gif = tmp_path / 'anim.gif'
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / 'gif_bag'
    assert write_image_bag(open_source(gif), out, BagOptions()).frames == 5
    mjpeg = tmp_path / 'stream.mjpg'
    with open(mjpeg, 'wb') as stream:
        for image in frames:
            image.save(stream, 'JPEG', quality=95)
    out = tmp_path / 'mjpeg_bag'
    assert write_image_bag(open_source(mjpeg), out, BagOptions(rate=2.0)).frames == 5
    _, read = read_frames(out)
    for i, (_, _, pixels) in enumerate(read):
        assert np.abs(pixels.astype(int) - frame_pixels(i)).max() < 12


def test_video_file(tmp_path: Path):
    # PyAV is a dependency (requirements/data.txt), so a missing one is a failure, not a skip.
    try:
        import av
    except ImportError as err:
        pytest.fail(f'PyAV (av, requirements/data.txt) is not installed: {err}; run setup_env.sh')
    video = tmp_path / 'walk.mp4'
    with av.open(str(video), 'w') as container:
        stream = container.add_stream('mpeg4', rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(frame_pixels(i, 64, 48), format='rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / 'bag'
    assert spa3r_main(['bag', str(video), str(out), '--start', str(START)]) == 0
    _, read = read_frames(out)
    assert len(read) == 6
    # No --rate: the video's own frame times (5 fps).
    assert [s for s, _, _ in read] == [round(START * 1e9) + round(i / 5 * 1e9) for i in range(6)]
    for i, (_, _, pixels) in enumerate(read):
        assert np.abs(pixels.astype(int) - frame_pixels(i, 64, 48)).mean() < 6


@pytest.mark.parametrize(
    ('make', 'message'),
    [
        (lambda d: d, 'holds no image file'),
        (lambda d: d / 'missing', 'does not exist'),
        (lambda d: (d / 'x.bin').write_bytes(b'x') and d / 'x.bin', "unknown kind of file '.bin'"),
        (
            lambda d: (d / 'bad.png').write_bytes(b'not a png') and d / 'bad.png',
            'cannot read image',
        ),
        (lambda d: (d / 'e.mjpg').write_bytes(b'nothing') and d / 'e.mjpg', 'holds no JPEG'),
    ],
)
def test_bad_sources_exit_2_with_the_reason(tmp_path: Path, make, message, capsys):
    source = tmp_path / 'src'
    source.mkdir()
    out = tmp_path / 'out'
    assert spa3r_main(['bag', str(make(source)), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('spa3r bag: error: ') and message in err and 'Traceback' not in err
    assert not out.exists()


@pytest.mark.parametrize(
    'timing',
    [
        ['--start', '2147483646', '--rate', '0.5'],  # frame 1 would be stamped 2**31 s (2038)
        ['--start', str(START), '--rate', '1e-9'],  # a frame every 31 years
        ['--start', str(START), '--rate', '1e-300'],  # offsets beyond any float
    ],
)
def test_stamps_past_the_largest_ros_time_exit_2_naming_the_frame(
    folder: Path, tmp_path: Path, timing: list[str], capsys
):
    out = tmp_path / 'out'
    assert spa3r_main(['bag', str(folder), str(out), *timing]) == 2
    err = capsys.readouterr().err
    assert err.startswith('spa3r bag: error: frame1.png: its stamp ') and 'Traceback' not in err
    assert 'outside the times a ROS header can carry' in err
    assert not out.exists()


def test_a_rate_faster_than_the_stamp_resolution_is_refused(folder: Path, tmp_path: Path, capsys):
    # Above 1e9 Hz frames 0 and 1 would both be stamped START: every frame at one instant.
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exit_info:
        spa3r_main(['bag', str(folder), str(out), '--rate', '1e10'])
    assert exit_info.value.code == 2
    assert "argument --rate: expected a number > 0 and <= 1e+09, got '1e10'" in (
        capsys.readouterr().err
    )
    assert not out.exists()
    with pytest.raises(ValueError, match='rate must be a number > 0 and <= 1e'):
        BagOptions(rate=1e300)
    assert spa3r_main(['bag', str(folder), str(out), '--rate', '1e9', '--start', '1']) == 0
    _, frames = read_frames(out)
    assert [stamp_ns for stamp_ns, _, _ in frames] == [10**9 + i for i in range(12)]


def test_the_largest_ros_time_is_a_valid_stamp(folder: Path, tmp_path: Path):
    out = tmp_path / 'out'
    argv = ['bag', str(folder), str(out), '--start', '2147483646', '--rate', '2']
    assert spa3r_main([*argv, '--max-frames', '2']) == 0
    _, frames = read_frames(out)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for _, m, _ in frames] == [
        (2147483646, 0), (2147483646, 500_000_000)
    ]  # fmt: skip


def test_a_file_name_that_is_not_utf8_prints_on_a_strict_stdout(
    folder: Path, tmp_path: Path, monkeypatch
):
    # os.listdir gives b'notes\xff.txt' as 'notes\udcff.txt'; a UTF-8 locale other than C makes
    # stdout strict, and the summary listing it used to fail after the bag was written.
    (folder / os.fsdecode(b'notes\xff.txt')).write_text('not an image')
    stdout = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='strict')
    monkeypatch.setattr(sys, 'stdout', stdout)
    out = tmp_path / 'out'
    assert spa3r_main(['bag', str(folder), str(out)]) == 0
    stdout.flush()
    printed = stdout.buffer.getvalue().decode('utf-8')
    assert '12 frames 48x32' in printed and 'left out 3 entries' in printed
    assert 'notes\\udcff.txt' in printed
    assert out.exists()


def test_an_existing_output_is_never_replaced(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / 'exists'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    assert spa3r_main(['bag', str(folder), str(out)]) == 2
    assert 'exists; give a new bag folder name' in capsys.readouterr().err
    assert (out / 'keep.txt').read_text() == 'mine'


def test_natural_order():
    names = ['img10.png', 'img2.png', 'IMG1.png', 'img2b.png', 'a.png']
    assert sorted(names, key=natural_key) == [
        'a.png', 'IMG1.png', 'img2.png', 'img2b.png', 'img10.png'
    ]  # fmt: skip

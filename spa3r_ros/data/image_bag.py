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

"""``spa3r bag``'s logic: a rosbag2 recording from a folder of images, an animation or a video.

Sources (:func:`open_source`):

* a folder: every file with an image suffix (:data:`IMAGE_SUFFIXES`), in natural order of the
  names (``frame2.png`` before ``frame10.png``); other files and sub-folders are left out and
  counted;
* one image file with several frames (animated GIF, APNG, WebP, multi-page TIFF), through Pillow;
* a motion-JPEG stream (``.mjpg`` / ``.mjpeg``: concatenated JPEG images);
* a video file (:data:`VIDEO_SUFFIXES`), decoded with PyAV (``av``, in ``requirements/data.txt``).

Every frame becomes ``[H, W, 3]`` uint8 RGB as a camera would deliver it (:func:`to_rgb`): EXIF
orientation applied, CMYK, palette, grey and 16-bit images converted, alpha dropped. A camera has
one image size, so frames of another size than the first are refused (the default) or, with
``mixed_sizes='resize'``, resized to the first frame's size when their aspect ratio agrees within
1 % (a different aspect ratio, e.g. a portrait photo among landscape ones, is refused either way:
resizing would distort it). ``max_side`` scales every frame down so its longer side fits.

Stamps: frame ``i`` is stamped ``start + i / rate`` (header stamp and recording time are equal);
a video without a ``rate`` keeps its own frame times (``start`` + presentation time).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
import io
import itertools
import logging
import math
from pathlib import Path
import re
import shutil
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence
import yaml

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.image_decode import pillow_errors, scale16to8
from spa3r_ros.core.stamps import NS_PER_SEC, ns_to_sec
from spa3r_ros.core.types import MAX_STAMP_SEC
from spa3r_ros.data.bag_writer import BagWriter
from spa3r_ros.data.ros_names import topic_name_error
from spa3r_ros.data.rosbag_io import CAMERA_INFO_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE, IMAGE_MSGTYPE

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm')
)
MJPEG_SUFFIXES = frozenset(('.mjpg', '.mjpeg'))
VIDEO_SUFFIXES = frozenset(('.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg'))
FORMATS = ('raw', 'jpeg', 'png')
MIXED_SIZES = ('refuse', 'resize')
# Stamps a header can carry: builtin_interfaces/Time has an int32 ``sec`` and a uint32
# ``nanosec``, so 0 .. (2**31 - 1) s + 999999999 ns.
MAX_STAMP_NS = int(MAX_STAMP_SEC) * NS_PER_SEC - 1
# Fastest --rate: one frame per nanosecond, the resolution of a stamp. Above it successive
# frames would round to the same stamp.
MAX_RATE = 1e9
# Aspect ratios that differ by less than this are "the same camera" for mixed_sizes='resize'.
ASPECT_TOLERANCE = 0.01
_JPEG_SOI = b'\xff\xd8'
_JPEG_EOI = b'\xff\xd9'


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera for ``sensor_msgs/CameraInfo`` (plumb_bob distortion).

    Attributes:
        fx, fy, cx, cy: the pinhole matrix entries (pixels).
        width, height: the image size they are for; 0 = the frames' size.
        distortion: the 5 plumb_bob coefficients.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy, *self.distortion)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ValueError(f'camera intrinsics must be finite numbers, got {values}')
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'fx and fy must be > 0, got {self.fx}, {self.fy}')

    @classmethod
    def parse(cls, text: str) -> 'Intrinsics':
        """From ``'fx,fy,cx,cy'``.

        Raises:
            ValueError: not four finite numbers with positive focal lengths.
        """
        parts = text.split(',')
        if len(parts) != 4:
            raise ValueError(f'expected fx,fy,cx,cy (four numbers), got {text!r}')
        try:
            fx, fy, cx, cy = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f'expected fx,fy,cx,cy (four numbers), got {text!r}') from None
        return cls(fx, fy, cx, cy)

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'Intrinsics':
        """From a ROS camera calibration YAML (camera_calibration / camera_info_manager format).

        Keys used: ``image_width``, ``image_height``, ``camera_matrix.data`` (9 numbers) and
        ``distortion_coefficients.data`` (5 numbers, plumb_bob; optional).

        Raises:
            DatasetError: the file cannot be read or lacks those keys (the message says which).
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise DatasetError(f'cannot read camera info {str(path)!r}: {err}') from None
        try:
            k = [float(v) for v in data['camera_matrix']['data']]
            width, height = int(data['image_width']), int(data['image_height'])
            d_data = (data.get('distortion_coefficients') or {}).get('data') or [0.0] * 5
            distortion = tuple(float(v) for v in d_data)
            if len(k) != 9 or len(distortion) != 5 or width < 1 or height < 1:
                raise ValueError('camera_matrix needs 9 numbers, distortion 5, sizes >= 1')
            return cls(k[0], k[4], k[2], k[5], width, height, distortion)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DatasetError(
                f'camera info {str(path)!r}: expected image_width, image_height, '
                f'camera_matrix.data (9 numbers), distortion_coefficients.data (5): {err}'
            ) from None

    def matrix(self) -> np.ndarray:
        """The 3x3 pinhole matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)

    def scaled(self, width: int, height: int, source: tuple[int, int]) -> 'Intrinsics':
        """These intrinsics for frames resized from ``source`` (W, H) to ``width`` x ``height``."""
        sx, sy = width / source[0], height / source[1]
        # Pixel centres: x' + 0.5 = (x + 0.5) * s.
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=width,
            height=height,
        )


@dataclass(frozen=True)
class Frame:
    """One source frame: where it came from, its pixels and, for videos, its own time."""

    name: str
    rgb: np.ndarray  # [H, W, 3] uint8
    time_sec: float | None = None


@dataclass
class Source:
    """Frames to record, read one at a time (:func:`open_source`)."""

    path: Path
    kind: str  # 'folder', 'images', 'mjpeg' or 'video'
    read: Callable[[int], Iterator[Frame]]  # every -> the frames; see frames()
    skipped: list[str] = field(default_factory=list)  # folder entries that are not images

    def frames(self, every: int = 1) -> Iterator[Frame]:
        """Every ``every``-th frame from the first, read from the source again on each call.

        A frame left out is not converted to RGB, nor decoded when it is a still image or a
        motion-JPEG image (an animation's or a video's frames are: later ones build on them).
        """
        return self.read(every)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digit runs by value: ``img2`` before ``img10``."""
    return [(0, int(part), part) if part.isdigit() else (1, part.lower(), part)
            for part in re.split(r'(\d+)', name) if part]  # fmt: skip


def to_rgb(image: Image.Image) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of a Pillow image, as a camera would deliver it.

    EXIF orientation is applied; 16-bit and 32-bit integer grey is scaled to 8 bits (a 16-bit
    range, values clipped to 0 .. 65535), float grey by its own minimum and maximum; CMYK,
    YCbCr, LAB, HSV, palette, 1-bit and grey convert to RGB; alpha is dropped (a camera has none).
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
        grey = scale16to8(np.clip(np.asarray(image), 0, 65535))
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == 'F':
        values = np.nan_to_num(np.asarray(image, np.float64))
        low, high = float(values.min()), float(values.max())
        grey = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
        return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
    if image.mode == 'P' and 'transparency' in image.info:
        image = image.convert('RGBA')  # Pillow warns on P -> RGB with transparency
    if image.mode != 'RGB':
        image = image.convert('RGB')
    return np.ascontiguousarray(np.asarray(image, np.uint8))


def _pillow_error(name: str, err: BaseException) -> DatasetError:
    return DatasetError(f'cannot read image {name}: {type(err).__name__}: {err}')


def _image_file_frames(
    path: Path, every: int = 1, counter: Iterator[int] | None = None
) -> Iterator[Frame]:
    """Every ``every``-th frame of one image file (one for still images, several for animations).

    ``counter`` numbers the frames when they continue a sequence (the files of a folder).
    """
    counter = itertools.count() if counter is None else counter
    try:
        with Image.open(path) as image:
            count = getattr(image, 'n_frames', 1)
            for index, page in enumerate(ImageSequence.Iterator(image)):
                if next(counter) % every:
                    continue
                name = path.name if count == 1 else f'{path.name}[{index}]'
                # An animation's frames are composited by Pillow (GIF disposal, APNG blending).
                yield Frame(name, to_rgb(page.copy()))
    except pillow_errors() as err:
        raise _pillow_error(path.name, err) from None


def _folder_frames(files: list[Path], every: int = 1) -> Iterator[Frame]:
    counter = itertools.count()  # frames are counted across files
    for path in files:
        yield from _image_file_frames(path, every, counter)


def _mjpeg_frames(path: Path, every: int = 1, chunk_bytes: int = 1 << 20) -> Iterator[Frame]:
    """Every ``every``-th JPEG image of a motion-JPEG stream, split at start and end markers."""
    buffer = b''
    index = 0
    with open(path, 'rb') as stream:
        while True:
            chunk = stream.read(chunk_bytes)
            buffer += chunk
            while True:
                start = buffer.find(_JPEG_SOI)
                end = buffer.find(_JPEG_EOI, start + 2) if start >= 0 else -1
                if end < 0:
                    break
                data, buffer = buffer[start : end + 2], buffer[end + 2 :]
                if index % every == 0:  # an image left out is not decoded
                    name = f'{path.name}[{index}]'
                    try:
                        with Image.open(io.BytesIO(data), formats=['JPEG']) as image:
                            image.load()
                            yield Frame(name, to_rgb(image))
                    except pillow_errors() as err:
                        raise _pillow_error(name, err) from None
                index += 1
            if not chunk:
                break
    if index == 0:
        raise DatasetError(f'{str(path)!r} holds no JPEG image (expected a motion-JPEG stream)')


def _video_frames(path: Path, every: int = 1) -> Iterator[Frame]:
    """Every ``every``-th frame of a video file, decoded with PyAV, with its presentation time."""
    try:
        import av
    except ImportError as err:
        raise DatasetError(
            f'reading the video {str(path)!r} needs PyAV (pip install av, listed in '
            f'requirements/data.txt): {err}'
        ) from None
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DatasetError(f'cannot open video {str(path)!r}: {err}') from None
    with container:
        if not container.streams.video:
            raise DatasetError(f'{str(path)!r} has no video stream')
        stream = container.streams.video[0]
        index = 0
        try:
            for frame in container.decode(stream):
                # A frame left out is decoded (later frames may depend on it), not converted.
                if index % every == 0:
                    time_sec = float(frame.time) if frame.time is not None else None
                    rgb = frame.to_ndarray(format='rgb24')
                    yield Frame(f'{path.name}[{index}]', np.ascontiguousarray(rgb), time_sec)
                index += 1
        except av.FFmpegError as err:
            raise DatasetError(
                f'video {str(path)!r}: decoding frame {index} failed: {err}'
            ) from None
    if index == 0:
        raise DatasetError(f'video {str(path)!r} has no decodable frame')


def open_source(path: str | Path) -> Source:
    """The frames of a folder of images, an image file, a motion-JPEG stream or a video.

    Raises:
        DatasetError: the path does not exist, a folder holds no image, or the file's type is
            not one of the supported kinds (the message lists them).
    """
    path = Path(path)
    if path.is_dir():
        entries = sorted(path.iterdir(), key=lambda p: natural_key(p.name))
        files = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        skipped = [p.name for p in entries if p not in files]
        if not files:
            raise DatasetError(
                f'folder {str(path)!r} holds no image file ({", ".join(sorted(IMAGE_SUFFIXES))})'
            )
        return Source(path, 'folder', lambda every: _folder_frames(files, every), skipped)
    if not path.is_file():
        raise DatasetError(f'{str(path)!r} does not exist')
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Source(path, 'images', lambda every: _image_file_frames(path, every))
    if suffix in MJPEG_SUFFIXES:
        return Source(path, 'mjpeg', lambda every: _mjpeg_frames(path, every))
    if suffix in VIDEO_SUFFIXES:
        return Source(path, 'video', lambda every: _video_frames(path, every))
    known = sorted(IMAGE_SUFFIXES | MJPEG_SUFFIXES | VIDEO_SUFFIXES)
    raise DatasetError(
        f'{str(path)!r}: unknown kind of file {suffix or "(no suffix)"!r}; expected a folder of '
        f'images or a file ending in {", ".join(known)}'
    )


@dataclass(frozen=True)
class BagOptions:
    """How ``spa3r bag`` records frames (see the module docstring).

    Attributes:
        topic: the image topic (absolute).
        fmt: ``'raw'`` (sensor_msgs/Image rgb8), ``'jpeg'`` or ``'png'`` (CompressedImage).
        rate: frames per second; None keeps a video's own frame times (10 Hz for images).
        start_sec: stamp of the first frame (seconds since the epoch).
        frame_id: ``header.frame_id`` of every message.
        camera_info_topic: where a CameraInfo goes with every frame (None: no camera info).
        intrinsics: the camera for the camera info (required with a camera info topic).
        mixed_sizes: ``'refuse'`` or ``'resize'`` frames whose size differs from the first.
        max_side: scale frames down so the longer side is at most this (0: keep the size).
        every: keep every n-th frame of the source (1: all).
        max_frames: stop after this many frames (0: all).
        jpeg_quality: quality of ``'jpeg'`` (1 .. 100).
        storage: ``'mcap'`` or ``'sqlite3'``.
    """

    topic: str = '/camera/image_raw'
    fmt: str = 'raw'
    rate: float | None = None
    start_sec: float = 0.0
    frame_id: str = 'camera'
    camera_info_topic: str | None = None
    intrinsics: Intrinsics | None = None
    mixed_sizes: str = 'refuse'
    max_side: int = 0
    every: int = 1
    max_frames: int = 0
    jpeg_quality: int = 90
    storage: str = 'mcap'

    def __post_init__(self) -> None:
        for name in ('topic', 'camera_info_topic'):
            value = getattr(self, name)
            if value is not None:
                error = topic_name_error(value, absolute=True)
                if error is not None:
                    raise ValueError(f'{name}: {error}')
        if self.camera_info_topic is not None and self.camera_info_topic == self.topic:
            raise ValueError('the camera info topic must differ from the image topic')
        if self.fmt not in FORMATS:
            raise ValueError(f'format must be one of {FORMATS}, got {self.fmt!r}')
        if self.mixed_sizes not in MIXED_SIZES:
            raise ValueError(f'mixed_sizes must be one of {MIXED_SIZES}, got {self.mixed_sizes!r}')
        if self.rate is not None and not (math.isfinite(self.rate) and 0 < self.rate <= MAX_RATE):
            raise ValueError(f'rate must be a number > 0 and <= {MAX_RATE:g}, got {self.rate!r}')
        if not (math.isfinite(self.start_sec) and 0 <= self.start_sec < 2**31):
            raise ValueError(
                f'start must be seconds since the epoch in [0, 2^31), got {self.start_sec!r}'
            )
        if self.camera_info_topic is not None and self.intrinsics is None:
            raise ValueError('a camera info topic needs intrinsics (a YAML file or fx,fy,cx,cy)')
        for name, low in (('max_side', 0), ('every', 1), ('max_frames', 0)):
            if getattr(self, name) < low:
                raise ValueError(f'{name} must be >= {low}, got {getattr(self, name)!r}')
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be 1 .. 100, got {self.jpeg_quality!r}')


@dataclass
class BagSummary:
    """What :func:`write_image_bag` wrote."""

    path: Path
    frames: int = 0
    width: int = 0
    height: int = 0
    resized: int = 0
    first_stamp_sec: float = 0.0
    last_stamp_sec: float = 0.0
    skipped: list[str] = field(default_factory=list)


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, np.uint8)


def encode_compressed(rgb: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """``[H, W, 3]`` uint8 RGB as the data of a ``CompressedImage``.

    Args:
        rgb: the pixels.
        fmt: ``'jpeg'`` or ``'png'``.
        quality: JPEG quality (1 .. 100); PNG is lossless and ignores it.
    """
    buf = io.BytesIO()
    if fmt == 'jpeg':
        Image.fromarray(rgb).save(buf, 'JPEG', quality=quality)
    else:
        Image.fromarray(rgb).save(buf, 'PNG')
    return buf.getvalue()


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def write_image_bag(source: Source, out: str | Path, options: BagOptions) -> BagSummary:
    """Record ``source``'s frames into a new bag at ``out``.

    Frames are read, converted and written one at a time (memory holds one frame); frames left
    out by ``every`` or after ``max_frames`` are not converted. When writing
    fails (a frame of another size, an unreadable file, Ctrl-C), the partly written bag is
    removed, so a bag at ``out`` is always complete.

    Returns:
        What was written.

    Raises:
        DatasetError: ``out`` exists, a frame cannot be read, a frame's size differs from the
            first (see ``mixed_sizes``), or the camera info does not fit the frames.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise DatasetError(f'{str(out)!r} exists; give a new bag folder name')
    summary = BagSummary(out, skipped=list(source.skipped))
    try:
        with BagWriter(out, storage=options.storage) as bag:
            _write_frames(bag, source, options, summary)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    if summary.frames == 0:
        shutil.rmtree(out, ignore_errors=True)
        raise DatasetError(f'{str(source.path)!r}: no frame to write')
    logger.info(
        'wrote %s: %d frames %dx%d from %s', out, summary.frames, summary.width, summary.height,
        source.path,
    )  # fmt: skip
    return summary


def _write_frames(bag: BagWriter, source: Source, options: BagOptions, summary: BagSummary):
    msgtype = IMAGE_MSGTYPE if options.fmt == 'raw' else COMPRESSED_IMAGE_MSGTYPE
    bag.add_topic(options.topic, msgtype)
    if options.camera_info_topic is not None:
        bag.add_topic(options.camera_info_topic, CAMERA_INFO_MSGTYPE)
    use_video_times = options.rate is None and source.kind == 'video'
    period = 1.0 / (options.rate if options.rate is not None else 10.0)
    start_ns = round(options.start_sec * 1e9)
    first: tuple[int, int] | None = None  # the first frame's source size (W, H)
    target = (0, 0)
    intrinsics = None
    first_time = None
    for frame in source.frames(options.every):
        height, width = frame.rgb.shape[:2]
        if first is None:
            first = (width, height)
            target = _target_size(width, height, options.max_side)
            intrinsics = _camera_for(options.intrinsics, first, target)
            summary.width, summary.height = target
        rgb = frame.rgb
        if (width, height) != first:
            _check_mixed_size(frame, first, options.mixed_sizes)
            summary.resized += 1
        if rgb.shape[1::-1] != target:
            rgb = _resize(rgb, *target)
        if use_video_times and frame.time_sec is not None:
            first_time = frame.time_sec if first_time is None else first_time
            offset_sec = frame.time_sec - first_time
        else:
            offset_sec = summary.frames * period
        stamp_ns = _frame_stamp_ns(frame, start_ns, offset_sec)
        if options.fmt == 'raw':
            msg = bag.image(rgb, stamp_ns, options.frame_id)
        else:
            data = encode_compressed(rgb, options.fmt, options.jpeg_quality)
            msg = bag.compressed_image(data, options.fmt, stamp_ns, options.frame_id)
        bag.write(options.topic, stamp_ns, msg)
        if intrinsics is not None:
            info = bag.camera_info(
                intrinsics.matrix(), target[0], target[1], stamp_ns, options.frame_id,
                np.asarray(intrinsics.distortion),
            )  # fmt: skip
            bag.write(options.camera_info_topic, stamp_ns, info)
        if summary.frames == 0:
            summary.first_stamp_sec = ns_to_sec(stamp_ns)
        summary.last_stamp_sec = ns_to_sec(stamp_ns)
        summary.frames += 1
        if options.max_frames and summary.frames >= options.max_frames:
            break  # before the next frame is read


def _frame_stamp_ns(frame: Frame, start_ns: int, offset_sec: float) -> int:
    """``start_ns`` + ``offset_sec``, or an error when no header stamp can carry it.

    A slow ``--rate`` or a late ``--start`` can push later frames past the largest ROS time
    (2**31 s, in 2038), or a tiny rate past any float: refused here, naming the frame, instead
    of failing inside the message serialiser.

    Raises:
        DatasetError: the stamp is not within 0 .. 2**31 s.
    """
    offset_ns = offset_sec * 1e9
    if math.isfinite(offset_ns):
        stamp_ns = start_ns + round(offset_ns)
        if 0 <= stamp_ns <= MAX_STAMP_NS:
            return stamp_ns
    stamp_sec = start_ns / NS_PER_SEC + offset_sec
    raise DatasetError(
        f'{frame.name}: its stamp {stamp_sec:.6g} s is outside the times a ROS header can carry '
        '(0 .. 2^31 s, i.e. before 2038-01-19); give an earlier --start or a higher --rate'
    )


def _check_mixed_size(frame: Frame, first: tuple[int, int], policy: str) -> None:
    height, width = frame.rgb.shape[:2]
    base = f'{frame.name} is {width}x{height}, the first frame {first[0]}x{first[1]}'
    if policy == 'refuse':
        raise DatasetError(
            f'{base}: a camera has one image size (use --mixed-sizes resize to resize frames of '
            "the same aspect ratio to the first frame's size)"
        )
    aspect, first_aspect = width / height, first[0] / first[1]
    if abs(aspect / first_aspect - 1) > ASPECT_TOLERANCE:
        raise DatasetError(
            f'{base}: its aspect ratio differs ({aspect:.3f} vs {first_aspect:.3f}), so it '
            'cannot be resized without distortion; record such frames in a bag of their own'
        )


def _camera_for(
    intrinsics: Intrinsics | None, first: tuple[int, int], target: tuple[int, int]
) -> Intrinsics | None:
    """The camera info's intrinsics for the written frames (scaled when frames are resized)."""
    if intrinsics is None:
        return None
    calibrated = (intrinsics.width, intrinsics.height)
    if intrinsics.width and calibrated != first:
        raise DatasetError(
            f'the camera info is for {calibrated[0]}x{calibrated[1]} images, the frames are '
            f'{first[0]}x{first[1]}'
        )
    return intrinsics.scaled(target[0], target[1], first)

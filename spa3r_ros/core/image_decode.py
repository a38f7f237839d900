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

"""Camera images from ROS messages to numpy arrays, without cv_bridge, OpenCV or rclpy.

The live node and the bag reader share these decoders, so a recorded scene and a live one reach
the model as the same arrays. Two kinds of image come out:

* ``'color'``: ``[H, W, 3]`` uint8 RGB, C-contiguous. Grey cameras are replicated to three
  channels, 16-bit cameras are scaled to 8 bit, YUV 4:2:2 is converted with BT.601.
* ``'depth'``: ``[H, W]`` float32 metres, NaN where the sensor has no measurement (zero,
  non-finite or negative values).

The result is always a copy: it never aliases the message buffer, which the middleware may reuse
once the callback returns.

Size limit: every decoder takes ``max_size`` (width, height; default 4096 x 4096, the default of
``scene.max_frame_width`` / ``scene.max_frame_height``) and refuses a larger image with
:class:`FrameTooLargeError` *before* decoding it: raw images by their ``width`` / ``height``
fields, JPEG and PNG by their header (Pillow opens lazily and reads the pixels only on ``load``),
so a small file that claims a huge image costs nothing.

References:
    * ``sensor_msgs/image_encodings.hpp`` (encoding names, channel counts, bit depths).
    * ``compressed_image_transport`` and ``compressed_depth_image_transport``
      (ros-perception/image_transport_plugins): the ``format`` strings of
      ``sensor_msgs/CompressedImage`` and the 12-byte header of the ``compressedDepth`` format
      (int32 compression format, then two float32 quantisation parameters, native little-endian)
      in front of the PNG.
    * ITU-R BT.601 (studio swing) for the YUV 4:2:2 conversion, the coefficients OpenCV uses for
      ``COLOR_YUV2RGB_UYVY``/``_YUY2``.
"""

import array
from dataclasses import dataclass
import io
import logging
import struct
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from spa3r_ros.configs.scene import DEFAULT_MAX_FRAME_HEIGHT, DEFAULT_MAX_FRAME_WIDTH
from spa3r_ros.core.errors import ImageDecodeError

if TYPE_CHECKING:
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

# What message data can be: bytes (rclpy fast path), array.array (rclpy), uint8 ndarray (rosbags).
ImageData: TypeAlias = 'bytes | bytearray | memoryview | array.array[int] | np.ndarray'

KIND_COLOR = 'color'
KIND_DEPTH = 'depth'

DEFAULT_MAX_FRAME_SIZE = (DEFAULT_MAX_FRAME_WIDTH, DEFAULT_MAX_FRAME_HEIGHT)


class FrameTooLargeError(ImageDecodeError):
    """An image larger than the frame-size limit (refused before its pixels are decoded).

    Attributes:
        width: the image's width (px).
        height: the image's height (px).
        max_size: the limit ``(max_width, max_height)`` it exceeds.
    """

    def __init__(self, what: str, width: int, height: int, max_size: tuple[int, int]) -> None:
        self.width = int(width)
        self.height = int(height)
        self.max_size = (int(max_size[0]), int(max_size[1]))
        super().__init__(
            f'{what}: {self.width}x{self.height} is larger than the frame-size limit '
            f'{self.max_size[0]}x{self.max_size[1]} (scene.max_frame_width / max_frame_height)'
        )


def check_frame_size(what: str, width: int, height: int, max_size: tuple[int, int] | None) -> None:
    """Refuse an image larger than ``max_size`` (``(width, height)``; None: no limit).

    Raises:
        FrameTooLargeError: if ``width`` or ``height`` exceeds its limit.
    """
    if max_size is not None and (width > max_size[0] or height > max_size[1]):
        raise FrameTooLargeError(what, width, height, max_size)


@dataclass(frozen=True)
class _Layout:
    """How one raw encoding lays out a pixel.

    Attributes:
        dtype: numpy element type in little-endian form (``'u1'``, ``'<u2'``, ``'<f4'``).
        channels: elements per pixel.
        kind: what the decoder produces (``'color'`` or ``'depth'``).
    """

    dtype: str
    channels: int
    kind: str

    @property
    def bytes_per_pixel(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels


# Encodings decode_raw understands. YUV 4:2:2 packs two pixels into four bytes, so it is
# described as two one-byte channels per pixel (the row arithmetic is the same).
_RAW_LAYOUTS: dict[str, _Layout] = {
    'rgb8': _Layout('u1', 3, KIND_COLOR),
    'bgr8': _Layout('u1', 3, KIND_COLOR),
    'rgba8': _Layout('u1', 4, KIND_COLOR),
    'bgra8': _Layout('u1', 4, KIND_COLOR),
    'mono8': _Layout('u1', 1, KIND_COLOR),
    'mono16': _Layout('<u2', 1, KIND_COLOR),
    'rgb16': _Layout('<u2', 3, KIND_COLOR),
    'bgr16': _Layout('<u2', 3, KIND_COLOR),
    'rgba16': _Layout('<u2', 4, KIND_COLOR),
    'bgra16': _Layout('<u2', 4, KIND_COLOR),
    '16UC1': _Layout('<u2', 1, KIND_DEPTH),
    '32FC1': _Layout('<f4', 1, KIND_DEPTH),
    'yuv422': _Layout('u1', 2, KIND_COLOR),
    'uyvy': _Layout('u1', 2, KIND_COLOR),
    'yuv422_yuy2': _Layout('u1', 2, KIND_COLOR),
    'yuyv': _Layout('u1', 2, KIND_COLOR),
}

# ROS's ``yuv422`` is UYVY (U0 Y0 V0 Y1); ``yuv422_yuy2`` is YUYV (Y0 U0 Y1 V0).
_UYVY = frozenset({'yuv422', 'uyvy'})
_YUYV = frozenset({'yuv422_yuy2', 'yuyv'})

# Channel order of the colour encodings, as indices that turn the stored order into RGB.
_TO_RGB: dict[str, tuple[int, int, int]] = {
    'rgb8': (0, 1, 2),
    'rgba8': (0, 1, 2),
    'rgb16': (0, 1, 2),
    'rgba16': (0, 1, 2),
    'bgr8': (2, 1, 0),
    'bgra8': (2, 1, 0),
    'bgr16': (2, 1, 0),
    'bgra16': (2, 1, 0),
}

# compressedDepth header: int32 compression format, float32 depthParam[2] (little-endian hosts).
_DEPTH_HEADER = struct.Struct('<iff')
DEPTH_HEADER_BYTES = _DEPTH_HEADER.size  # 12

# Depth in 16UC1 images is in millimetres (REP 118).
_MM_PER_M = 1000.0


def supported_raw_encodings() -> tuple[str, ...]:
    """Return the ``sensor_msgs/Image`` encodings :func:`decode_raw` accepts, sorted."""
    return tuple(sorted(_RAW_LAYOUTS))


@dataclass(frozen=True)
class DecodedImage:
    """One decoded camera image.

    Attributes:
        kind: ``'color'`` or ``'depth'``.
        pixels: for ``'color'`` a ``[H, W, 3]`` uint8 RGB array; for ``'depth'`` a ``[H, W]``
            float32 array in metres with NaN where invalid. Always C-contiguous and owned (never a
            view on a message buffer).

    Raises:
        ValueError: if ``kind`` and the array's dtype or shape disagree.
    """

    kind: str
    pixels: np.ndarray

    def __post_init__(self) -> None:
        if self.kind == KIND_COLOR:
            ok = self.pixels.dtype == np.uint8 and self.pixels.ndim == 3
            ok = ok and self.pixels.shape[2] == 3
            expected = '[H, W, 3] uint8'
        elif self.kind == KIND_DEPTH:
            ok = self.pixels.dtype == np.float32 and self.pixels.ndim == 2
            expected = '[H, W] float32'
        else:
            raise ValueError(f'kind must be {KIND_COLOR!r} or {KIND_DEPTH!r}, got {self.kind!r}')
        if not ok:
            raise ValueError(
                f'a {self.kind} image needs a {expected} array, '
                f'got {list(self.pixels.shape)} {self.pixels.dtype}'
            )

    @property
    def height(self) -> int:
        """Rows (H)."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns (W)."""
        return int(self.pixels.shape[1])


def _as_bytes_array(data: ImageData, what: str) -> np.ndarray:
    """View any buffer (bytes, memoryview, array.array, ndarray) as flat uint8 without copying."""
    try:
        if isinstance(data, np.ndarray):
            return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise ImageDecodeError(
            f'{what}: data must be bytes-like, got {type(data).__name__} ({err})'
        ) from None


def _check_size(name: str, value: int, encoding: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ImageDecodeError(
            f'{encoding} image: {name} must be a positive integer, got {value!r}'
        )


def scale16to8(values: np.ndarray) -> np.ndarray:
    """Map uint16 [0, 65535] to uint8 [0, 255] linearly, rounding to nearest (v * 255 / 65535)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _depth_from_mm(mm: np.ndarray) -> np.ndarray:
    """``[H, W]`` uint16 millimetres -> float32 metres; 0 (no return) -> NaN."""
    depth = mm.astype(np.float32) / np.float32(_MM_PER_M)
    depth[mm == 0] = np.nan
    return depth


def _clean_depth_m(depth: np.ndarray) -> np.ndarray:
    """Float metres -> float32 with NaN for zero, negative and non-finite values (a copy)."""
    depth = np.array(depth, dtype=np.float32, order='C', copy=True)
    with np.errstate(invalid='ignore'):
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def _yuv422_to_rgb(rows: np.ndarray, encoding: str) -> np.ndarray:
    """``[H, 2W]`` uint8 packed YUV 4:2:2 -> ``[H, W, 3]`` uint8 RGB (BT.601 studio swing)."""
    quads = rows.reshape(rows.shape[0], -1, 4).astype(np.float32)  # [H, W/2, 4]
    if encoding in _UYVY:
        u, y0, v, y1 = (quads[..., i] for i in range(4))
    else:
        y0, u, y1, v = (quads[..., i] for i in range(4))
    y = np.stack([y0, y1], axis=-1).reshape(rows.shape[0], -1)  # [H, W]
    # Each chroma pair is shared by two neighbouring pixels.
    u = np.repeat(u, 2, axis=1) - 128.0
    v = np.repeat(v, 2, axis=1) - 128.0
    luma = 1.164 * (y - 16.0)
    rgb = np.stack(
        [luma + 1.596 * v, luma - 0.813 * v - 0.391 * u, luma + 2.018 * u],
        axis=-1,
    )
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decode_raw(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: ImageData,
    is_bigendian: bool = False,
    *,
    max_size: tuple[int, int] | None = DEFAULT_MAX_FRAME_SIZE,
) -> DecodedImage:
    """Decode the fields of a ``sensor_msgs/Image`` into RGB or metric depth.

    Args:
        encoding: the message's ``encoding``; one of :func:`supported_raw_encodings`. ``mono8``
            is replicated to three channels; ``mono16``/``rgb16``/``bgr16`` (and the ``a``
            variants) are scaled to 8 bit by ``v * 255 / 65535``; alpha is dropped; ``16UC1`` is
            depth in millimetres and ``32FC1`` depth in metres; ``yuv422``/``uyvy`` and
            ``yuv422_yuy2``/``yuyv`` are converted with BT.601.
        height: rows (H), > 0.
        width: columns (W), > 0; even for YUV 4:2:2.
        step: bytes per row, >= ``width * bytes_per_pixel``; bytes past the pixels of a row
            (padding) are ignored.
        data: at least ``step * height`` bytes (bytes, memoryview, ``array.array`` or an ndarray;
            rosbags gives a uint8 ndarray, rclpy an ``array.array``).
        is_bigendian: byte order of 16- and 32-bit elements.
        max_size: largest ``(width, height)`` decoded (None: no limit); checked on the fields,
            before the data is touched.

    Returns:
        A :class:`DecodedImage` that owns its pixels: ``'color'`` ``[H, W, 3]`` uint8 RGB, or
        ``'depth'`` ``[H, W]`` float32 metres with NaN where invalid (zero, non-finite, negative).

    Raises:
        FrameTooLargeError: the image is larger than ``max_size``.
        ImageDecodeError: unknown encoding, non-positive sizes, a step too small for the width,
            data shorter than ``step * height``, or an odd width for YUV 4:2:2.
    """
    layout = _RAW_LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(
            f'unsupported image encoding {encoding!r}; supported: '
            f'{", ".join(supported_raw_encodings())}'
        )
    _check_size('height', height, encoding)
    _check_size('width', width, encoding)
    _check_size('step', step, encoding)
    height, width, step = int(height), int(width), int(step)
    check_frame_size(f'{encoding} image', width, height, max_size)
    is_yuv = encoding in _UYVY or encoding in _YUYV
    if is_yuv and width % 2:
        raise ImageDecodeError(
            f'{encoding} image: width must be even (two pixels share one chroma pair), got {width}'
        )
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f'{encoding} image: step {step} is smaller than width * bytes_per_pixel = '
            f'{width} * {layout.bytes_per_pixel} = {row_bytes}'
        )
    buf = _as_bytes_array(data, f'{encoding} image')
    needed = step * height
    if buf.size < needed:
        raise ImageDecodeError(
            f'{encoding} image: data has {buf.size} bytes, expected step * height = '
            f'{step} * {height} = {needed}'
        )
    # [H, step] -> drop the row padding; still a view on the message buffer at this point.
    rows = buf[:needed].reshape(height, step)[:, :row_bytes]

    if is_yuv:
        return DecodedImage(KIND_COLOR, _yuv422_to_rgb(rows, encoding))

    dtype = np.dtype(layout.dtype)
    if dtype.itemsize > 1:
        if is_bigendian:
            dtype = dtype.newbyteorder('>')
        # The padded rows are not contiguous, and .view() needs contiguous rows; this copies.
        values = np.ascontiguousarray(rows).view(dtype).astype(dtype.newbyteorder('='))
    else:
        values = rows
    values = values.reshape(height, width, layout.channels)

    if layout.kind == KIND_DEPTH:
        plane = values[..., 0]
        if encoding == '16UC1':
            return DecodedImage(KIND_DEPTH, _depth_from_mm(plane))
        return DecodedImage(KIND_DEPTH, _clean_depth_m(plane))

    if layout.channels == 1:
        grey = values[..., 0]
        if dtype.itemsize == 2:
            grey = scale16to8(grey)
        rgb = np.repeat(grey[..., None], 3, axis=2)  # a new array
    else:
        rgb = values[..., list(_TO_RGB[encoding])]  # fancy indexing copies
        if dtype.itemsize == 2:
            rgb = scale16to8(rgb)
    return DecodedImage(KIND_COLOR, np.ascontiguousarray(rgb))


def encode_raw(
    pixels: np.ndarray,
    encoding: str,
    *,
    is_bigendian: bool = False,
    step: int | None = None,
) -> tuple[int, bytes]:
    """Encode an array as the ``step`` and ``data`` of a ``sensor_msgs/Image`` (the inverse).

    ``decode_raw(encoding, H, W, step, data)`` gives back the input for every lossless case.

    Args:
        pixels: by encoding:

            * ``rgb8``/``bgr8``/``rgba8``/``bgra8``: ``[H, W, 3]`` uint8 RGB (alpha is written
              as 255).
            * ``mono8``: ``[H, W]`` uint8, or ``[H, W, 3]`` uint8 RGB reduced to BT.601 luma.
            * ``mono16``, ``rgb16``/``bgr16``/``rgba16``/``bgra16``: uint16 ``[H, W]`` /
              ``[H, W, 3]`` raw values, or uint8 scaled by 257 (so 255 -> 65535).
            * ``16UC1``: ``[H, W]`` float metres (NaN and values <= 0 -> 0, rounded to whole
              millimetres) or uint16 millimetres.
            * ``32FC1``: ``[H, W]`` float metres (written as float32).
            * ``yuv422``/``uyvy``/``yuv422_yuy2``/``yuyv``: ``[H, W, 3]`` uint8 RGB, even W;
              chroma is averaged over pixel pairs, so this one is lossy.
        encoding: target encoding (see :func:`supported_raw_encodings`).
        is_bigendian: write 16/32-bit elements big-endian.
        step: bytes per row; ``None`` means no padding. Larger values pad each row with zeros.

    Returns:
        ``(step, data)``: bytes per row and the image bytes (``step * H`` of them). rclpy takes
        ``bytes`` directly; for a rosbags message wrap them with ``np.frombuffer(data, np.uint8)``.

    Raises:
        ImageDecodeError: unknown encoding, a step smaller than a row, or a depth out of range.
        ValueError: an array whose dtype or shape does not fit the encoding.
    """
    layout = _RAW_LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(
            f'cannot encode {encoding!r}; supported: {", ".join(supported_raw_encodings())}'
        )
    pixels = np.asarray(pixels)
    if pixels.ndim not in (2, 3) or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(
            f'{encoding}: expected a non-empty [H, W] or [H, W, C] array, got {list(pixels.shape)}'
        )
    height, width = pixels.shape[:2]

    def need(ndim: int, dtypes: tuple[type, ...]) -> None:
        shape_ok = pixels.ndim == ndim and (ndim == 2 or pixels.shape[2] == 3)
        if not shape_ok or pixels.dtype.type not in dtypes:
            shape = '[H, W]' if ndim == 2 else '[H, W, 3]'
            names = ' or '.join(np.dtype(d).name for d in dtypes)
            raise ValueError(
                f'{encoding}: expected a {shape} {names} array, '
                f'got {list(pixels.shape)} {pixels.dtype}'
            )

    if encoding in _UYVY or encoding in _YUYV:
        need(3, (np.uint8,))
        if width % 2:
            raise ImageDecodeError(f'{encoding}: width must be even, got {width}')
        rgb = pixels.astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b
        u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b
        v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b
        # Average chroma over each pixel pair: [H, W] -> [H, W/2].
        u = u.reshape(height, -1, 2).mean(axis=2)
        v = v.reshape(height, -1, 2).mean(axis=2)
        y0, y1 = y[:, 0::2], y[:, 1::2]
        order = (u, y0, v, y1) if encoding in _UYVY else (y0, u, y1, v)
        packed = np.stack(order, axis=-1).reshape(height, width * 2)
        values = np.clip(np.rint(packed), 0, 255).astype(np.uint8)
    elif encoding == '16UC1':
        if pixels.ndim == 2 and pixels.dtype == np.uint16:
            values = pixels
        else:
            need(2, (np.float16, np.float32, np.float64))
            mm = np.rint(np.nan_to_num(pixels.astype(np.float64), nan=0.0) * _MM_PER_M)
            mm[mm < 0] = 0
            if mm.max() > np.iinfo(np.uint16).max:
                raise ImageDecodeError(
                    f'16UC1: depth {float(np.nanmax(pixels))} m does not fit in uint16 millimetres'
                )
            values = mm.astype(np.uint16)
    elif encoding == '32FC1':
        need(2, (np.float16, np.float32, np.float64))
        values = pixels.astype(np.float32)
    elif encoding == 'mono8':
        if pixels.ndim == 3:
            need(3, (np.uint8,))
            rgb = pixels.astype(np.float32)
            luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
            values = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
        else:
            need(2, (np.uint8,))
            values = pixels
    else:
        wide = np.dtype(layout.dtype).itemsize == 2
        need(2 if layout.channels == 1 else 3, (np.uint8, np.uint16) if wide else (np.uint8,))
        values = pixels
        if wide and values.dtype == np.uint8:
            values = values.astype(np.uint16) * np.uint16(257)
        if layout.channels > 1:
            values = values[..., list(_TO_RGB[encoding])]
            if layout.channels == 4:
                alpha = np.iinfo(values.dtype).max
                values = np.concatenate(
                    [values, np.full((height, width, 1), alpha, values.dtype)], axis=2
                )

    dtype = np.dtype(layout.dtype)
    if is_bigendian:
        dtype = dtype.newbyteorder('>')
    row = np.ascontiguousarray(values, dtype=dtype).reshape(height, -1).view(np.uint8)
    row_bytes = width * layout.bytes_per_pixel
    assert row.shape[1] == row_bytes, (row.shape, row_bytes)
    if step is None:
        step = row_bytes
    if step < row_bytes:
        raise ImageDecodeError(
            f'{encoding}: step {step} is smaller than width * bytes_per_pixel = {row_bytes}'
        )
    out = np.zeros((height, step), np.uint8)
    out[:, :row_bytes] = row
    return step, out.tobytes()


def _split_format(fmt: str) -> tuple[str, str]:
    """Split an image_transport format into (source encoding, compression part), both stripped.

    ``'rgb8; jpeg compressed bgr8'`` -> ``('rgb8', 'jpeg compressed bgr8')``; a bare ``'jpeg'``
    -> ``('', 'jpeg')``.
    """
    if ';' in fmt:
        head, tail = fmt.split(';', 1)
        return head.strip(), tail.strip()
    return '', fmt.strip()


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (they carry the image size): C0-CF except DHT, JPG and DAC.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _header_size(payload: np.ndarray, codec: str) -> tuple[int, int] | None:
    """``(width, height)`` read from a PNG's IHDR or a JPEG's start-of-frame, or None.

    Read by hand because Pillow refuses images above about 179 MP in ``open`` with its own
    decompression-bomb error, which does not say the size: this way every oversize image is
    reported as too large. None (not a well-formed header) leaves the verdict to Pillow.
    """
    head = payload[:65536].tobytes() if isinstance(payload, np.ndarray) else bytes(payload[:65536])
    if codec == 'png':
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b'IHDR' and len(head) >= 24:
            return struct.unpack('>II', head[16:24])
        return None
    position = 2 if head[:2] == b'\xff\xd8' else len(head)
    while position + 9 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        (length,) = struct.unpack('>H', head[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack('>HH', head[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def pillow_errors() -> tuple[type[Exception], ...]:
    """What Pillow raises on a file or payload it cannot open or decode, decompression bombs too.

    A function, not a constant, so that Pillow is imported only when an image is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    return (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)


def _open_with_pillow(
    payload: np.ndarray | bytes, codec: str, fmt: str, max_size: tuple[int, int] | None
) -> 'PILImage.Image':
    # Pillow is imported here so that importing this module stays cheap for the raw path.
    from PIL import Image

    pil_format = {'jpeg': 'JPEG', 'jpg': 'JPEG', 'png': 'PNG'}[codec]
    errors = pillow_errors()
    what = f'compressed image (format {fmt!r})'
    claimed = _header_size(payload, 'png' if pil_format == 'PNG' else 'jpeg')
    if claimed is not None:
        check_frame_size(what, claimed[0], claimed[1], max_size)
    try:
        # open() reads only the header; the size is checked before load() decodes the pixels.
        image = Image.open(io.BytesIO(bytes(payload)), formats=[pil_format])
    except errors as err:
        raise _undecodable(fmt, len(payload), pil_format, err) from None
    check_frame_size(what, image.width, image.height, max_size)
    try:
        image.load()
    except errors as err:
        raise _undecodable(fmt, len(payload), pil_format, err) from None
    return image


def _undecodable(fmt: str, size: int, pil_format: str, err: Exception) -> ImageDecodeError:
    return ImageDecodeError(
        f'compressed image (format {fmt!r}): cannot decode {size} bytes as {pil_format}: {err}'
    )


def _decode_compressed_depth(
    fmt: str, encoding: str, compression: str, buf: np.ndarray, max_size: tuple[int, int] | None
) -> DecodedImage:
    """The ``compressedDepth`` format: a 12-byte header, then a PNG of uint16 values."""
    words = compression.split()
    codec = words[1].lower() if len(words) > 1 else 'png'  # the oldest publishers wrote no codec
    if codec != 'png':
        raise ImageDecodeError(
            f'compressed depth image (format {fmt!r}): only the png codec is supported, '
            f'got {codec!r}'
        )
    if encoding not in ('16UC1', '32FC1'):
        raise ImageDecodeError(
            f'compressed depth image (format {fmt!r}): encoding must be 16UC1 or 32FC1, '
            f'got {encoding!r}'
        )
    if buf.size <= DEPTH_HEADER_BYTES:
        raise ImageDecodeError(
            f'compressed depth image (format {fmt!r}): {buf.size} bytes is too short for the '
            f'{DEPTH_HEADER_BYTES}-byte header and a PNG'
        )
    _, quant_a, quant_b = _DEPTH_HEADER.unpack(buf[:DEPTH_HEADER_BYTES].tobytes())
    image = _open_with_pillow(buf[DEPTH_HEADER_BYTES:], 'png', fmt, max_size)
    if image.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
        raise ImageDecodeError(
            f'compressed depth image (format {fmt!r}): expected a 16-bit single-channel PNG, '
            f'got Pillow mode {image.mode!r}'
        )
    values = np.asarray(image)
    if values.dtype != np.uint16:
        values = values.astype(np.uint16)
    if encoding == '16UC1':
        return DecodedImage(KIND_DEPTH, _depth_from_mm(values))
    # 32FC1 was quantised as inverse depth: q = A / depth + B, with q == 0 meaning "no depth".
    q = values.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        depth = np.float32(quant_a) / (q - np.float32(quant_b))
    depth[values == 0] = np.nan
    return DecodedImage(KIND_DEPTH, _clean_depth_m(depth))


def decode_compressed(
    format: str,
    data: ImageData,
    *,
    max_size: tuple[int, int] | None = DEFAULT_MAX_FRAME_SIZE,
) -> DecodedImage:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG, or image_transport compressedDepth).

    Args:
        format: the message's ``format`` as image_transport writes it: ``'jpeg'``, ``'png'``,
            ``'rgb8; jpeg compressed bgr8'``, ``'16UC1; png compressed '``,
            ``'16UC1; compressedDepth png'``, ``'32FC1; compressedDepth'``.
        data: the compressed bytes.
        max_size: largest ``(width, height)`` decoded (None: no limit); checked on the header,
            before the pixels are decoded.

    Returns:
        ``'color'`` ``[H, W, 3]`` uint8 RGB for 8-bit images (grey replicated, alpha and palettes
        resolved); ``'depth'`` ``[H, W]`` float32 metres for a 16-bit single-channel PNG (read as
        millimetres, like 16UC1, unless the format names a ``mono16`` source, which is scaled to
        8-bit grey) and for compressedDepth (16UC1 millimetres, or 32FC1 inverse-depth
        quantisation undone). Zero depth is NaN.

    Raises:
        FrameTooLargeError: the image is larger than ``max_size``.
        ImageDecodeError: an unknown codec, an RVL compressedDepth payload, data the codec cannot
            read, or a pixel layout with no RGB/depth meaning.
    """
    if not isinstance(format, str):
        raise ImageDecodeError(f'compressed image: format must be a string, got {format!r}')
    buf = _as_bytes_array(data, f'compressed image (format {format!r})')
    encoding, compression = _split_format(format)
    if 'compresseddepth' in compression.lower():
        return _decode_compressed_depth(format, encoding, compression, buf, max_size)

    codec = compression.split()[0].lower() if compression else ''
    if codec not in ('jpeg', 'jpg', 'png'):
        raise ImageDecodeError(
            f'compressed image: unsupported format {format!r}; expected jpeg or png '
            f'(as image_transport writes them, e.g. "rgb8; jpeg compressed bgr8")'
        )
    if buf.size == 0:
        raise ImageDecodeError(f'compressed image (format {format!r}): data is empty')
    image = _open_with_pillow(buf, codec, format, max_size)

    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        values = np.asarray(image)
        if values.dtype != np.uint16:
            if values.min() < 0 or values.max() > np.iinfo(np.uint16).max:
                raise ImageDecodeError(
                    f'compressed image (format {format!r}): 32-bit PNG values do not fit uint16'
                )
            values = values.astype(np.uint16)
        if encoding == 'mono16':
            grey = scale16to8(values)
            return DecodedImage(KIND_COLOR, np.repeat(grey[..., None], 3, axis=2))
        return DecodedImage(KIND_DEPTH, _depth_from_mm(values))

    if image.mode == 'L':
        grey = np.asarray(image)
        return DecodedImage(KIND_COLOR, np.repeat(grey[..., None], 3, axis=2))
    if image.mode != 'RGB':
        # Palette, RGBA, LA, CMYK, YCbCr (JPEG), 1-bit: Pillow knows each of these conversions.
        try:
            image = image.convert('RGB')
        except ValueError as err:
            raise ImageDecodeError(
                f'compressed image (format {format!r}): cannot convert Pillow mode '
                f'{image.mode!r} to RGB: {err}'
            ) from None
    return DecodedImage(KIND_COLOR, np.array(image, dtype=np.uint8, order='C', copy=True))

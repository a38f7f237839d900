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

"""Tests for spa3r_ros.core.image_decode: raw encodings, padding, byte order, compressed images."""

import array
import io
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import ImageDecodeError
from spa3r_ros.core.image_decode import (
    decode_compressed,
    decode_raw,
    DecodedImage,
    DEFAULT_MAX_FRAME_SIZE,
    encode_raw,
    FrameTooLargeError,
    supported_raw_encodings,
)

H, W = 5, 6


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------- raw: colour


def test_rgb8_hand_computed_pixels() -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])  # 2x2 rgb8
    out = decode_raw('rgb8', 2, 2, 6, data)
    assert out.kind == 'color'
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.pixels[0, 1], [4, 5, 6])
    np.testing.assert_array_equal(out.pixels[1, 0], [7, 8, 9])


def test_bgr8_and_bgra8_are_reordered_to_rgb() -> None:
    out = decode_raw('bgr8', 1, 1, 3, bytes([10, 20, 30]))
    np.testing.assert_array_equal(out.pixels[0, 0], [30, 20, 10])
    out = decode_raw('bgra8', 1, 1, 4, bytes([10, 20, 30, 99]))
    np.testing.assert_array_equal(out.pixels[0, 0], [30, 20, 10])
    out = decode_raw('rgba8', 1, 1, 4, bytes([10, 20, 30, 99]))
    np.testing.assert_array_equal(out.pixels[0, 0], [10, 20, 30])


def test_mono8_is_replicated() -> None:
    out = decode_raw('mono8', 1, 3, 3, bytes([0, 7, 255]))
    np.testing.assert_array_equal(out.pixels[0], [[0, 0, 0], [7, 7, 7], [255, 255, 255]])


def test_mono16_is_scaled_to_8_bit() -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype='<u2')
    out = decode_raw('mono16', 1, 4, 8, values.tobytes())
    # v * 255 / 65535 rounded: 0, 1, 127.5 -> 128, 255.
    np.testing.assert_array_equal(out.pixels[0, :, 0], [0, 1, 128, 255])
    assert (out.pixels[..., 0] == out.pixels[..., 2]).all()


def test_rgb16_big_endian_hand_computed() -> None:
    data = struct.pack('>HHH', 65535, 0, 257)
    out = decode_raw('rgb16', 1, 1, 6, data, is_bigendian=True)
    np.testing.assert_array_equal(out.pixels[0, 0], [255, 0, 1])
    out = decode_raw('bgr16', 1, 1, 6, data, is_bigendian=True)
    np.testing.assert_array_equal(out.pixels[0, 0], [1, 0, 255])


@pytest.mark.parametrize(
    'encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'rgba16', 'bgra16']
)
@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('pad', [0, 5])
def test_colour_round_trip(rgb: np.ndarray, encoding: str, bigendian: bool, pad: int) -> None:
    bpp = (4 if 'a' in encoding else 3) * (2 if encoding.endswith('16') else 1)
    step, data = encode_raw(rgb, encoding, is_bigendian=bigendian, step=W * bpp + pad)
    assert step == W * bpp + pad and len(data) == step * H
    out = decode_raw(encoding, H, W, step, data, bigendian)
    np.testing.assert_array_equal(out.pixels, rgb)


def test_mono_round_trip() -> None:
    grey = np.arange(H * W, dtype=np.uint8).reshape(H, W) * 7
    step, data = encode_raw(grey, 'mono8')
    np.testing.assert_array_equal(decode_raw('mono8', H, W, step, data).pixels[..., 1], grey)
    step, data = encode_raw(grey, 'mono16', is_bigendian=True)
    assert step == 2 * W
    out = decode_raw('mono16', H, W, step, data, is_bigendian=True)
    np.testing.assert_array_equal(out.pixels[..., 0], grey)


def test_padding_bytes_are_ignored(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'rgb8', step=W * 3 + 4)
    rows = np.frombuffer(data, np.uint8).reshape(H, step).copy()
    rows[:, W * 3 :] = 0xEE  # garbage in the padding must not leak into pixels
    out = decode_raw('rgb8', H, W, step, rows.tobytes())
    np.testing.assert_array_equal(out.pixels, rgb)


def test_output_is_an_owned_contiguous_copy(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'rgb8')
    buffer = np.frombuffer(data, np.uint8).copy()  # a writable message buffer, as rosbags has
    out = decode_raw('rgb8', H, W, step, buffer)
    assert out.pixels.flags.c_contiguous and out.pixels.flags.owndata
    buffer[:] = 0  # the middleware reuses its buffer
    np.testing.assert_array_equal(out.pixels, rgb)


def test_accepts_memoryview_and_array_array(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'bgr8')
    for wrapped in (memoryview(data), array.array('B', data), bytearray(data)):
        np.testing.assert_array_equal(decode_raw('bgr8', H, W, step, wrapped).pixels, rgb)


def test_extra_trailing_data_is_tolerated(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'rgb8')
    np.testing.assert_array_equal(decode_raw('rgb8', H, W, step, data + b'xyz').pixels, rgb)


# -------------------------------------------------------------------------------------- raw: YUV


@pytest.mark.parametrize(
    ('yuv', 'expected'),
    [
        ((16, 128, 128), (0, 0, 0)),
        ((235, 128, 128), (255, 255, 255)),  # 1.164 * 219 = 254.9
        ((126, 128, 128), (128, 128, 128)),  # 1.164 * 110 = 128.04
        # BT.601 red: R = 1.164*65 + 1.596*112 = 254.4; G, B < 0 -> 0.
        ((81, 90, 240), (254, 0, 0)),
    ],
)
@pytest.mark.parametrize('encoding', ['yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'])
def test_yuv422_hand_computed(encoding: str, yuv: tuple[int, int, int], expected: tuple) -> None:
    y, u, v = yuv
    # Two pixels that share the chroma pair; the second one is black (Y = 16).
    quad = [u, y, v, 16] if encoding in ('yuv422', 'uyvy') else [y, u, 16, v]
    out = decode_raw(encoding, 1, 2, 4, bytes(quad))
    np.testing.assert_array_equal(out.pixels[0, 0], expected)
    # Black with chroma of red is not black; only check the neutral cases for pixel 2.
    if u == v == 128:
        np.testing.assert_array_equal(out.pixels[0, 1], [0, 0, 0])


@pytest.mark.parametrize('encoding', ['yuv422', 'yuyv'])
def test_yuv422_round_trip_on_pixel_pairs(encoding: str) -> None:
    # Chroma is shared by two pixels, so only images with equal pairs round-trip (within rounding).
    pairs = np.random.default_rng(2).integers(0, 256, (H, W // 2, 3), dtype=np.uint8)
    rgb = np.repeat(pairs, 2, axis=1)
    step, data = encode_raw(rgb, encoding, step=2 * W + 2)
    out = decode_raw(encoding, H, W, step, data)
    assert np.abs(out.pixels.astype(int) - rgb.astype(int)).max() <= 2


def test_yuv422_odd_width_is_an_error() -> None:
    with pytest.raises(ImageDecodeError, match='yuv422.*even'):
        decode_raw('yuv422', 1, 3, 8, bytes(8))


# ------------------------------------------------------------------------------------ raw: depth


def test_16uc1_is_millimetres_with_zero_as_nan() -> None:
    mm = np.array([[0, 1, 1500, 65535]], dtype='<u2')
    out = decode_raw('16UC1', 1, 4, 8, mm.tobytes())
    assert out.kind == 'depth' and out.pixels.dtype == np.float32 and out.pixels.shape == (1, 4)
    assert np.isnan(out.pixels[0, 0])
    np.testing.assert_allclose(out.pixels[0, 1:], [0.001, 1.5, 65.535], rtol=1e-6)


def test_16uc1_big_endian_and_padding() -> None:
    mm = np.array([[1000, 2000], [3000, 0]], dtype='>u2')
    rows = np.zeros((2, 6), np.uint8)
    rows[:, :4] = mm.view(np.uint8).reshape(2, 4)
    out = decode_raw('16UC1', 2, 2, 6, rows.tobytes(), is_bigendian=True)
    np.testing.assert_allclose(out.pixels[0], [1.0, 2.0])
    assert out.pixels[1, 0] == pytest.approx(3.0) and np.isnan(out.pixels[1, 1])


def test_32fc1_invalid_values_become_nan() -> None:
    values = np.array([[0.0, np.inf, -1.0, np.nan, 2.25]], dtype='>f4')
    out = decode_raw('32FC1', 1, 5, 20, values.tobytes(), is_bigendian=True)
    assert np.isnan(out.pixels[0, :4]).all()
    assert out.pixels[0, 4] == np.float32(2.25)


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
@pytest.mark.parametrize('bigendian', [False, True])
def test_depth_round_trip(encoding: str, bigendian: bool) -> None:
    depth = np.random.default_rng(3).uniform(0.2, 9.0, (H, W)).astype(np.float32)
    depth[1, 2] = np.nan
    step, data = encode_raw(depth, encoding, is_bigendian=bigendian, step=None)
    out = decode_raw(encoding, H, W, step, data, bigendian)
    np.testing.assert_array_equal(np.isnan(out.pixels), np.isnan(depth))
    tol = 0.0005 + 1e-6 if encoding == '16UC1' else 0.0  # half a millimetre of rounding
    np.testing.assert_allclose(out.pixels, depth, atol=tol, rtol=0)


def test_16uc1_encode_accepts_raw_millimetres() -> None:
    mm = np.array([[0, 5, 60000]], dtype=np.uint16)
    step, data = encode_raw(mm, '16UC1')
    assert step == 6 and data == mm.astype('<u2').tobytes()


def test_16uc1_encode_rejects_out_of_range_depth() -> None:
    with pytest.raises(ImageDecodeError, match='uint16'):
        encode_raw(np.full((1, 1), 70.0, np.float32), '16UC1')


# ------------------------------------------------------------------------------------ raw: errors


def test_unknown_encoding_names_it_and_lists_supported() -> None:
    with pytest.raises(ImageDecodeError, match="'bayer_rggb8'.*rgb8"):
        decode_raw('bayer_rggb8', 1, 1, 1, b'\0')
    with pytest.raises(ImageDecodeError, match="'nv12'"):
        encode_raw(np.zeros((1, 1, 3), np.uint8), 'nv12')
    assert 'rgb8' in supported_raw_encodings() and '16UC1' in supported_raw_encodings()


def test_step_smaller_than_row_is_an_error() -> None:
    with pytest.raises(ImageDecodeError, match=r'step 5 .*2 \* 3 = 6'):
        decode_raw('rgb8', 1, 2, 5, bytes(5))


def test_truncated_data_is_an_error(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'rgb8')
    with pytest.raises(ImageDecodeError, match=f'{len(data) - 1} bytes.*{step} \\* {H}'):
        decode_raw('rgb8', H, W, step, data[:-1])


@pytest.mark.parametrize(
    ('height', 'width', 'step'), [(0, 2, 6), (2, 0, 6), (2, 2, 0), (-1, 2, 6)]
)
def test_non_positive_sizes_are_errors(height: int, width: int, step: int) -> None:
    with pytest.raises(ImageDecodeError, match='must be a positive integer'):
        decode_raw('rgb8', height, width, step, bytes(64))


def test_non_buffer_data_is_an_error() -> None:
    with pytest.raises(ImageDecodeError, match='bytes-like'):
        decode_raw('mono8', 1, 1, 1, 12345)  # type: ignore[arg-type]


def test_encode_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match=r'rgb8.*\[H, W, 3\] uint8'):
        encode_raw(np.zeros((2, 2, 3), np.float32), 'rgb8')
    with pytest.raises(ValueError, match='32FC1'):
        encode_raw(np.zeros((2, 2, 3), np.float32), '32FC1')
    with pytest.raises(ImageDecodeError, match='step 2'):
        encode_raw(np.zeros((2, 2, 3), np.uint8), 'rgb8', step=2)


def test_decoded_image_checks_kind_and_array() -> None:
    with pytest.raises(ValueError, match='kind'):
        DecodedImage('infrared', np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r'\[H, W, 3\] uint8'):
        DecodedImage('color', np.zeros((2, 2), np.uint8))
    img = DecodedImage('depth', np.zeros((2, 3), np.float32))
    assert (img.height, img.width) == (2, 3)


# ------------------------------------------------------------------------------------ compressed


def _pil_bytes(array_: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array_).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize('fmt', ['png', 'rgb8; png compressed rgb8', 'bgr8; png compressed bgr8'])
def test_png_colour_is_lossless_rgb(rgb: np.ndarray, fmt: str) -> None:
    out = decode_compressed(fmt, _pil_bytes(rgb, 'PNG'))
    assert out.kind == 'color'
    np.testing.assert_array_equal(out.pixels, rgb)


@pytest.mark.parametrize('fmt', ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8'])
def test_jpeg_colour_decodes_close_to_source(fmt: str) -> None:
    # A smooth image so JPEG at high quality stays within a few levels.
    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.stack([xx * 5, yy * 7, 255 - xx * 5], axis=-1).astype(np.uint8)
    out = decode_compressed(fmt, np.frombuffer(_pil_bytes(rgb, 'JPEG', quality=95), np.uint8))
    assert out.kind == 'color' and out.pixels.shape == (32, 48, 3)
    assert np.abs(out.pixels.astype(int) - rgb).mean() < 3.0


def test_grey_and_rgba_png_become_rgb() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = decode_compressed('mono8; png compressed mono8', _pil_bytes(grey, 'PNG'))
    np.testing.assert_array_equal(out.pixels, np.repeat(grey[..., None], 3, axis=2))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    out = decode_compressed('png', _pil_bytes(rgba, 'PNG'))
    np.testing.assert_array_equal(out.pixels[..., 0], 200)
    assert out.pixels.shape == (2, 2, 3)


def test_16_bit_png_is_depth_in_millimetres() -> None:
    mm = np.array([[0, 1000], [2500, 65535]], dtype=np.uint16)
    out = decode_compressed('16UC1; png compressed ', _pil_bytes(mm, 'PNG'))
    assert out.kind == 'depth'
    assert np.isnan(out.pixels[0, 0])
    np.testing.assert_allclose(out.pixels.ravel()[1:], [1.0, 2.5, 65.535], rtol=1e-6)


def test_16_bit_png_from_a_mono16_camera_is_grey() -> None:
    values = np.array([[0, 65535]], dtype=np.uint16)
    out = decode_compressed('mono16; png compressed mono16', _pil_bytes(values, 'PNG'))
    assert out.kind == 'color'
    np.testing.assert_array_equal(out.pixels[0, :, 0], [0, 255])


@pytest.mark.parametrize('fmt', ['16UC1; compressedDepth png', '16UC1; compressedDepth'])
def test_compressed_depth_16uc1(fmt: str) -> None:
    mm = np.array([[0, 750], [1200, 4000]], dtype=np.uint16)
    header = struct.pack('<iff', 0, 0.0, 0.0)
    out = decode_compressed(fmt, header + _pil_bytes(mm, 'PNG'))
    assert out.kind == 'depth' and np.isnan(out.pixels[0, 0])
    np.testing.assert_allclose(out.pixels.ravel()[1:], [0.75, 1.2, 4.0], rtol=1e-6)


def test_compressed_depth_32fc1_undoes_inverse_depth_quantisation() -> None:
    # The publisher's quantisation: A = z0 * (z0 + 1), B = 1 - A / depth_max, q = A / d + B.
    z0, depth_max = 100.0, 10.0
    quant_a = z0 * (z0 + 1.0)
    quant_b = 1.0 - quant_a / depth_max
    depth = np.array([[0.5, 1.0], [4.0, 20.0]], dtype=np.float32)  # 20 m is beyond depth_max
    q = np.where(depth < depth_max, quant_a / depth + quant_b, 0).astype(np.uint16)
    header = struct.pack('<iff', 0, quant_a, quant_b)
    out = decode_compressed('32FC1; compressedDepth png', header + _pil_bytes(q, 'PNG'))
    assert np.isnan(out.pixels[1, 1])
    # Truncation to uint16 costs at most d^2 / A per step of q.
    np.testing.assert_allclose(out.pixels.ravel()[:3], [0.5, 1.0, 4.0], atol=4.0**2 / quant_a)


def test_compressed_depth_errors() -> None:
    header = struct.pack('<iff', 0, 0.0, 0.0)
    png16 = _pil_bytes(np.zeros((2, 2), np.uint16), 'PNG')
    with pytest.raises(ImageDecodeError, match="'rvl'"):
        decode_compressed('16UC1; compressedDepth rvl', header + png16)
    with pytest.raises(ImageDecodeError, match='too short'):
        decode_compressed('16UC1; compressedDepth png', header)
    with pytest.raises(ImageDecodeError, match='16-bit single-channel'):
        decode_compressed(
            '16UC1; compressedDepth png', header + _pil_bytes(np.zeros((2, 2, 3), np.uint8), 'PNG')
        )
    with pytest.raises(ImageDecodeError, match="'rgb8'"):
        decode_compressed('rgb8; compressedDepth png', header + png16)
    # Without the header the PNG signature is shifted by 12 bytes: not a PNG any more.
    with pytest.raises(ImageDecodeError, match='PNG'):
        decode_compressed('16UC1; compressedDepth png', png16)


def test_compressed_bad_data_and_formats(rgb: np.ndarray) -> None:
    jpeg = _pil_bytes(rgb, 'JPEG')
    with pytest.raises(ImageDecodeError, match="'tiff'"):
        decode_compressed('tiff', jpeg)
    with pytest.raises(ImageDecodeError, match='empty'):
        decode_compressed('jpeg', b'')
    with pytest.raises(ImageDecodeError, match='JPEG'):
        decode_compressed('jpeg', b'not a jpeg at all')
    with pytest.raises(ImageDecodeError, match='PNG'):
        decode_compressed('png', jpeg)  # the format must match the payload
    with pytest.raises(ImageDecodeError):
        decode_compressed('jpeg', jpeg[: len(jpeg) // 2])  # truncated stream


# ------------------------------------------------------------------------------------ size limit


def _claim_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (same pixel data, recomputed header CRC)."""
    assert png[12:16] == b'IHDR'
    body = struct.pack('>II', width, height) + png[24:29]
    crc = struct.pack('>I', zlib.crc32(b'IHDR' + body))
    return png[:16] + body + crc + png[33:]


def _claim_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A JPEG whose start-of-frame claims another size."""
    sof = jpeg.index(b'\xff\xc0')
    return jpeg[: sof + 5] + struct.pack('>HH', height, width) + jpeg[sof + 9 :]


def test_default_limit_is_the_scene_config_default() -> None:
    assert DEFAULT_MAX_FRAME_SIZE == SceneConfig().max_frame_size == (4096, 4096)


@pytest.mark.parametrize(('width', 'height'), [(5000, 10), (10, 5000), (16000, 16000)])
def test_oversize_raw_images_are_refused_from_their_fields(width: int, height: int) -> None:
    """Checked before the data: an empty buffer is not even looked at."""
    with pytest.raises(FrameTooLargeError, match=f'{width}x{height} is larger than') as info:
        decode_raw('rgb8', height, width, width * 3, b'')
    assert (info.value.width, info.value.height, info.value.max_size) == (
        width,
        height,
        (4096,) * 2,
    )
    assert isinstance(info.value, ImageDecodeError)  # callers that catch decode errors see it


def test_the_limit_is_inclusive_and_configurable(rgb: np.ndarray) -> None:
    step, data = encode_raw(rgb, 'rgb8')
    assert decode_raw('rgb8', H, W, step, data, max_size=(W, H)).width == W
    with pytest.raises(FrameTooLargeError):
        decode_raw('rgb8', H, W, step, data, max_size=(W - 1, H))
    with pytest.raises(FrameTooLargeError):
        decode_raw('mono8', H, W, W, b'\0' * (H * W), max_size=(W, H - 1))
    assert decode_raw('rgb8', H, W, step, data, max_size=None).height == H


@pytest.mark.parametrize(
    ('fmt', 'payload'),
    [
        ('png', lambda a: _pil_bytes(a, 'PNG')),
        ('jpeg', lambda a: _pil_bytes(a, 'JPEG')),
        (
            '16UC1; compressedDepth png',
            lambda a: (
                struct.pack('<iff', 0, 0.0, 0.0) + _pil_bytes(a[..., 0].astype(np.uint16), 'PNG')
            ),
        ),
    ],
)
def test_oversize_compressed_images_are_refused_before_decoding(
    rgb: np.ndarray, fmt: str, payload, monkeypatch
) -> None:
    from PIL import ImageFile

    data = payload(rgb)
    assert decode_compressed(fmt, data, max_size=(W, H)).width == W

    def no_decoding(self):
        raise AssertionError('the pixels were decoded')

    monkeypatch.setattr(ImageFile.ImageFile, 'load', no_decoding)
    with pytest.raises(FrameTooLargeError, match=f'{W}x{H} is larger than the frame-size limit'):
        decode_compressed(fmt, data, max_size=(W - 1, H))


def test_a_small_png_claiming_a_huge_image_costs_nothing(rgb: np.ndarray) -> None:
    """The decompression-bomb case: 9000 x 9000 (and more) claimed by a few hundred bytes.

    16000 x 16000 is above Pillow's own bomb limit too; it is still reported as too large.
    """
    for side in (9000, 16000, 65535):
        bomb = _claim_size(_pil_bytes(rgb, 'PNG'), side, side)
        assert len(bomb) < 1000
        with pytest.raises(FrameTooLargeError, match=f'{side}x{side}'):
            decode_compressed('png', bomb)
        with pytest.raises(FrameTooLargeError, match=f'{side}x{side}'):
            decode_compressed('jpeg', _claim_jpeg_size(_pil_bytes(rgb, 'JPEG'), side, side))
    # The forged header is well-formed: only the size check stands between it and decoding.
    with pytest.raises(ImageDecodeError) as info:
        decode_compressed('png', _claim_size(_pil_bytes(rgb, 'PNG'), 64, 64))
    assert not isinstance(info.value, FrameTooLargeError)

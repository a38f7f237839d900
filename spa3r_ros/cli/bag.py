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

"""``spa3r bag SOURCE OUT``: write a rosbag2 recording from a folder of images or a video.

::

    spa3r bag photos/ run1              # 10 Hz, raw rgb8 on /camera/image_raw
    spa3r bag walk.mp4 run2 --format jpeg --every 3 --max-side 1280
    spa3r bag photos/ run3 --rate 2 --start 1704067200 --intrinsics 600,600,320,240

The logic and the rules (file order, sizes, colour conversion, stamps) are in
:mod:`spa3r_ros.data.image_bag`. Exit status: 0 written, 2 bad input (nothing is left at OUT),
130 interrupted (nothing is left at OUT).
"""

import argparse
from pathlib import Path
import sys
import time

from spa3r_ros.cli.args import (
    absolute_topic_name,
    command_main,
    float_range,
    int_range,
)
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.image_bag import (
    BagOptions,
    FORMATS,
    Intrinsics,
    MAX_RATE,
    MIXED_SIZES,
    open_source,
    write_image_bag,
)
from spa3r_ros.data.rosbag_io import STORAGES

PROG = 'spa3r bag'


def _intrinsics(text: str) -> Intrinsics:
    try:
        return Intrinsics.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r bag``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Write a rosbag2 recording (mcap or sqlite3) from a folder of images (in '
        'natural name order), an animated GIF/PNG/WebP, a motion-JPEG stream or a video file.',
    )
    parser.add_argument('source', type=Path, help='folder of images, image, .mjpg or video file')
    parser.add_argument('out', type=Path, help='bag folder to create (must not exist)')
    parser.add_argument(
        '--topic',
        type=absolute_topic_name,
        help='image topic (default /camera/image_raw; /camera/image_raw/compressed when '
        'compressed)',
    )
    parser.add_argument(
        '--format',
        choices=FORMATS,
        default='raw',
        help='raw: sensor_msgs/Image rgb8; jpeg or png: sensor_msgs/CompressedImage (default raw)',
    )
    parser.add_argument(
        '--jpeg-quality', type=int_range(1, 100), default=90, help='JPEG quality (default 90)'
    )
    parser.add_argument(
        '--rate',
        type=float_range(0.0, MAX_RATE, low_open=True),
        help="frames per second (default: a video's own frame times, 10 for images)",
    )
    parser.add_argument(
        '--start',
        type=float_range(0.0, 2.0**31 - 1),
        help='stamp of the first frame, seconds since the epoch (default: now)',
    )
    parser.add_argument('--frame-id', default='camera', help='header.frame_id (default camera)')
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument(
        '--camera-info', type=Path, metavar='YAML', help='ROS camera calibration YAML'
    )
    camera.add_argument(
        '--intrinsics', type=_intrinsics, metavar='FX,FY,CX,CY', help='pinhole intrinsics'
    )
    parser.add_argument(
        '--camera-info-topic',
        type=absolute_topic_name,
        help='CameraInfo topic (default: camera_info next to the image topic, when intrinsics '
        'are given)',
    )
    parser.add_argument(
        '--mixed-sizes',
        choices=MIXED_SIZES,
        default='refuse',
        help='frames whose size differs from the first: refuse (default), or resize those of '
        'the same aspect ratio',
    )
    parser.add_argument(
        '--max-side',
        type=int_range(0, 65535),
        default=0,
        help='scale frames down so the longer side is at most this many pixels (0: keep)',
    )
    parser.add_argument(
        '--every', type=int_range(1, 1 << 20), default=1, help='keep every N-th frame'
    )
    parser.add_argument(
        '--max-frames', type=int_range(0, 1 << 31), default=0, help='at most N frames (0: all)'
    )
    parser.add_argument('--storage', choices=STORAGES, default='mcap', help='default mcap')
    return parser


def options_from_args(args: argparse.Namespace) -> BagOptions:
    """The :class:`BagOptions` of parsed arguments (``--camera-info`` is read here).

    Raises:
        DatasetError: the camera info file cannot be read.
        ValueError: inconsistent options (e.g. the camera info topic is the image topic).
    """
    compressed = args.format != 'raw'
    topic = args.topic or ('/camera/image_raw/compressed' if compressed else '/camera/image_raw')
    intrinsics = args.intrinsics
    if args.camera_info is not None:
        intrinsics = Intrinsics.from_yaml(args.camera_info)
    info_topic = args.camera_info_topic
    if info_topic is None and intrinsics is not None:
        base = topic.removesuffix('/compressed').rsplit('/', 1)[0]
        info_topic = f'{base}/camera_info'
    if info_topic is not None and intrinsics is None:
        raise ValueError('--camera-info-topic needs --camera-info or --intrinsics')
    return BagOptions(
        topic=topic,
        fmt=args.format,
        rate=args.rate,
        start_sec=args.start if args.start is not None else float(int(time.time())),
        frame_id=args.frame_id,
        camera_info_topic=info_topic,
        intrinsics=intrinsics,
        mixed_sizes=args.mixed_sizes,
        max_side=args.max_side,
        every=args.every,
        max_frames=args.max_frames,
        jpeg_quality=args.jpeg_quality,
        storage=args.storage,
    )


def _main(argv: list[str] | None = None) -> int:
    """Run ``spa3r bag``; returns the exit status."""
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    source = open_source(args.source)
    summary = write_image_bag(source, args.out, options)
    kind = 'compressed ' + options.fmt if options.fmt != 'raw' else 'raw rgb8'
    print(
        f'wrote {summary.path} ({options.storage}): {summary.frames} frames '
        f'{summary.width}x{summary.height} ({kind}) on {options.topic}, stamps '
        f'{summary.first_stamp_sec:.3f} .. {summary.last_stamp_sec:.3f}'
    )
    if options.camera_info_topic is not None:
        print(f'camera info on {options.camera_info_topic}')
    if summary.resized:
        print(f"{summary.resized} frames resized to the first frame's size")
    if summary.skipped:
        shown = ', '.join(summary.skipped[:5]) + (', ...' if len(summary.skipped) > 5 else '')
        print(f'left out {len(summary.skipped)} entries that are not images: {shown}')
    return 0


main = command_main(
    PROG, _main, bad_input=(DatasetError, ValueError), interrupted='interrupted; nothing written'
)


if __name__ == '__main__':
    sys.exit(main())

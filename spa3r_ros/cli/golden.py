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

"""``spa3r golden DIR [DIR ...]``: check the models against golden-vector folders.

The runner is :mod:`spa3r_ros.tools.golden`. Exit status: 0 when every tensor passes, 1 when one
fails or a case raises, 2 for bad arguments or a folder no case kind recognises.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from spa3r_ros.cli.args import int_range
from spa3r_ros.tools.golden import detect_kind, format_comparison, run_folder


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r golden``."""
    parser = argparse.ArgumentParser(
        prog='spa3r golden', description='Check implementations against golden vectors.'
    )
    parser.add_argument('folders', nargs='+', type=Path, help='golden folders to run')
    parser.add_argument(
        '--threads',
        type=int_range(1, 4096),
        default=2,
        help='torch CPU threads (default 2, as the reference ran)',
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    status = 0
    for folder in args.folders:
        kind = detect_kind(folder) if folder.is_dir() else None
        if kind is None:
            print(f'ERROR {folder}: not a recognised golden folder', file=sys.stderr)
            status = max(status, 2)
            continue
        print(f'== {folder} ({kind.KIND})')
        results = run_folder(folder)
        for c in results:
            print(format_comparison(c))
        failed = sum(not c.passed for c in results)
        print(f'== {folder}: {len(results) - failed} passed, {failed} failed')
        if failed or not results:
            status = max(status, 1)
    return status


if __name__ == '__main__':
    sys.exit(main())

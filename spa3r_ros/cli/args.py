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

"""Argument checks and exit plumbing shared by every ``spa3r`` command.

Bad values end in exit 2 with the reason.

Each factory returns an ``argparse`` ``type=`` callable: argparse turns its
:class:`argparse.ArgumentTypeError` into ``spa3r <cmd>: error: argument --x: <reason>`` and exit
status 2, so no command line value can reach the code behind it unchecked (a negative thread
count, a NaN rate, a topic name ROS would refuse with a traceback later).
"""

import argparse
from collections.abc import Callable
import logging
import math
import sys

from spa3r_ros.core.errors import Spa3rError
from spa3r_ros.data.ros_names import topic_name_error

# Exit statuses of the commands (README): bad input, and Ctrl-C (128 + SIGINT).
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# Longest integer text accepted (Python refuses int() of more than 4300 digits with a message
# about sys.set_int_max_str_digits, which means nothing to a user).
_MAX_INT_DIGITS = 30


def topic_name(text: str) -> str:
    """``type=`` for a ROS 2 topic name."""
    error = topic_name_error(text)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return text


def absolute_topic_name(text: str) -> str:
    """``type=`` for an absolute ROS 2 topic name (a bag stores fully qualified names)."""
    error = topic_name_error(text, absolute=True)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return text


def int_range(low: int | None = None, high: int | None = None):
    """``type=`` for an integer in ``[low, high]`` (either bound may be None)."""
    if low is not None and high is not None:
        wanted = f'an integer from {low} to {high}'
    elif low is not None:
        wanted = f'an integer >= {low}'
    elif high is not None:
        wanted = f'an integer <= {high}'
    else:
        wanted = 'an integer'

    def parse(text: str) -> int:
        stripped = text.strip()
        if len(stripped.lstrip('+-')) > _MAX_INT_DIGITS:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {len(stripped)} characters')
        try:
            value = int(stripped)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}') from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}')
        return value

    parse.__name__ = 'integer'  # argparse names the type in some messages
    return parse


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """``type=`` for a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if low is not None:
        wanted = f'a number {">" if low_open else ">="} {low:g}'
        if high is not None:
            wanted += f' and <= {high:g}'
    elif high is not None:
        wanted = f'a number <= {high:g}'
    else:
        wanted = 'a finite number'

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}') from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'expected {wanted}, got {text!r}')
        return value

    parse.__name__ = 'number'
    return parse


# The types most commands need.
positive_float = float_range(0.0, low_open=True)
non_negative_float = float_range(0.0)
positive_int = int_range(1)
# torch CPU threads: 0 lets torch decide; more than 4096 is a typo, not a machine.
thread_count = int_range(0, 4096)


def setup_logging(verbose: bool) -> None:
    """Configure logging for a command: INFO with ``-v``, else WARNING (the core only logs)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format='%(levelname)s %(name)s: %(message)s',
    )


def _tolerant_stdout() -> None:
    r"""Let stdout print every ``str`` a command holds, as stderr already does.

    A file name that is not UTF-8 (an old camera card, a copy from another system) reaches
    Python as lone surrogates (``'\udcff'``), and a UTF-8 locale other than C (``en_US.UTF-8``)
    or ``PYTHONIOENCODING=utf-8`` makes stdout strict: printing such a name, e.g. in a summary
    after the work is done, would fail the command and report bad input for a bag or answers
    file it had written. With ``backslashreplace`` the name prints as ``\udcff`` instead.
    """
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='backslashreplace')


def command_main(
    prog: str,
    run: Callable[[list[str] | None], int],
    *,
    bad_input: tuple[type[BaseException], ...] = (Spa3rError, ValueError),
    interrupted: str = 'interrupted',
) -> Callable[[list[str] | None], int]:
    """Wrap a command body ``run(argv) -> status`` into the command's ``main(argv) -> status``.

    The body raises instead of printing: an error of ``bad_input`` ends in exit 2 with
    ``PROG: error: <message>`` on stderr (the message names the file, and line where there is
    one), Ctrl-C anywhere (loading models included) in exit 130 with ``PROG: <interrupted>``.

    Args:
        prog: the command's name, e.g. ``'spa3r eval'``.
        run: the body; returns the exit status of a run that got through.
        bad_input: the exception types that mean bad input (``()`` for none).
        interrupted: what to print after ``PROG:`` when interrupted, e.g. what was kept.

    Returns:
        ``main(argv)`` with ``run``'s docstring.
    """

    def main(argv: list[str] | None = None) -> int:
        _tolerant_stdout()
        try:
            return run(argv)
        except bad_input as err:
            print(f'{prog}: error: {err}', file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print(f'{prog}: {interrupted}', file=sys.stderr)
            return EXIT_INTERRUPTED

    main.__doc__ = run.__doc__
    return main

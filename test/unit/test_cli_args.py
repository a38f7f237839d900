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

"""The shared argument checks of the ``spa3r`` commands and the ROS name rules behind them."""

import argparse

import pytest

from spa3r_ros.cli.args import (
    absolute_topic_name,
    float_range,
    int_range,
    positive_float,
    thread_count,
    topic_name,
)
from spa3r_ros.cli.main import COMMANDS
from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.data.ros_names import topic_name_error


@pytest.mark.parametrize('name', ['/a', 'a', '/a/b_c/d1', '~', '~/private', '_x', '/A/B'])
def test_valid_topic_names_pass(name):
    assert topic_name_error(name) is None
    assert topic_name(name) == name


@pytest.mark.parametrize(
    'name', ['', '/', '/a/', '//a', '/a//b', '/1a', '/a b', '/a-b', 'a~', '/{node}', '/a/~b', '~a']
)
def test_invalid_topic_names_are_refused_with_the_rule(name):
    assert topic_name_error(name) is not None
    with pytest.raises(argparse.ArgumentTypeError, match='topic name'):
        topic_name(name)


def test_absolute_topic_names():
    assert absolute_topic_name('/camera/image_raw') == '/camera/image_raw'
    with pytest.raises(argparse.ArgumentTypeError, match='absolute'):
        absolute_topic_name('camera/image_raw')
    # rcl's limit is 247 characters (255 less the DDS prefix); 255 was a bug.
    assert 'at most 247' in topic_name_error('/' + 'a' * 300)
    assert topic_name_error('/' + 'a' * 246) is None
    assert 'at most 247' in topic_name_error('/' + 'a' * 247)


@pytest.mark.parametrize(
    ('parse', 'text', 'message'),
    [
        (thread_count, '-3', 'expected an integer from 0 to 4096'),
        (thread_count, '4097', 'expected an integer from 0 to 4096'),
        (thread_count, '1.5', "got '1.5'"),
        (thread_count, '9' * 5000, 'got 5000 characters'),
        (int_range(1), '0', 'expected an integer >= 1'),
        (int_range(high=3), '4', 'expected an integer <= 3'),
        (positive_float, '0', 'expected a number > 0'),
        (positive_float, 'nan', 'expected a number > 0'),
        (positive_float, 'inf', 'expected a number > 0'),
        (positive_float, '1e999', 'expected a number > 0'),
        (float_range(0.0, 2.0), '2.5', 'expected a number >= 0 and <= 2'),
        (float_range(high=1.0), '-inf', 'expected a number <= 1'),
    ],
)
def test_bad_numbers_are_refused_with_the_range(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


def test_good_numbers_parse():
    assert thread_count('0') == 0 and thread_count(' 8 ') == 8
    assert int_range(1)('+5') == 5
    assert positive_float('2.5') == 2.5 and float_range(0.0)('0') == 0.0


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_every_command_lives_in_cli_and_answers_help(command, capsys):
    module, _ = COMMANDS[command]
    assert module.startswith('spa3r_ros.cli.'), module
    with pytest.raises(SystemExit) as exit_info:
        spa3r_main([command, '--help'])
    assert exit_info.value.code == 0
    assert f'usage: spa3r {command}' in capsys.readouterr().out


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['replay', 'bag', '--questions', 'q', '--out', 'a', '--threads', '-3'], '--threads'),
        (['ask', 'bag', 'q', '--threads', '-3'], '--threads'),
        (['ask', 'bag', 'q', '--window', '0'], '--window'),
        (['ask', 'bag', 'q', '--timeout', 'nan'], '--timeout'),
        (['ask', 'bag', 'q', '--image-topic', 'not a topic'], '--image-topic'),
        (['replay', 'bag', '--questions', 'q', '--out', 'a', '--rate', '-1'], '--rate'),
        (['golden', 'dir', '--threads', '0'], '--threads'),
        (['demo', '--frames', '0'], '--frames'),
        (['bag', 'src', 'out', '--rate', '0'], '--rate'),
        (['bag', 'src', 'out', '--topic', 'relative/topic'], '--topic'),
        (['bag', 'src', 'out', '--intrinsics', '1,2,3'], '--intrinsics'),
        (['play', 'bag', '--remap', '/a:=/b c'], '--remap'),
    ],
)
def test_bad_arguments_of_every_command_exit_2_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        spa3r_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f'argument {message}' in err and 'Traceback' not in err

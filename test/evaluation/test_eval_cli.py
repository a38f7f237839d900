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
"""``spa3r eval`` end to end: tiny demo bags with hand-written QA files, the tiny-random model.

The command runs in-process (``main(argv)``) on one torch thread.
"""

import json
from pathlib import Path
import sys
import types

import pytest
import spa3r_test_eval_helpers as helpers

from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.core.prompts import OPTION_LETTERS
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.qa.records import FAMILIES, write_qa
from spa3r_ros.data.replay_jsonl import read_answers
from spa3r_ros.evaluation.metrics import score_strict

COMMON = ['--threads', '1', '--no-progress']


@pytest.fixture(scope='module')
def two_scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('world')
    for index in range(2):
        helpers.write_scene(root / f'scene_{index:04d}', index)
    return root


def _eval(args: list[str], out: Path | None = None) -> tuple[int, dict | None]:
    argv = ['eval', *args, *COMMON] + (['--out', str(out)] if out is not None else [])
    code = spa3r_main(argv)
    report = json.loads(out.read_text()) if out is not None and out.exists() else None
    return code, report


def test_two_scene_folder_runs_and_writes_the_report(two_scenes, tmp_path, capsys):
    code, report = _eval([str(two_scenes)], tmp_path / 'report.json')
    assert code == 0
    printed = capsys.readouterr().out
    assert 'random weights: scores are chance-level by construction' in printed
    assert 'overall (4 categories)' in printed and 'vsi_overall (3/8)' in printed

    assert report['model']['kind'] == 'tiny_random' and report['model']['random_weights']
    assert report['model']['geometry'] is True and report['model']['parameters'] > 0
    assert [s['name'] for s in report['data']['scenes']] == ['scene_0000', 'scene_0001']
    assert all(s['questions_from'] == 'file' for s in report['data']['scenes'])
    assert report['data']['generated'] is False
    assert report['data']['questions_per_family'] == {
        'object_counting': 2,
        'object_abs_distance': 2,
        'object_rel_direction_easy': 2,
        'camera_direction': 2,
    }
    records = report['questions']
    assert len(records) == 8 and all(r['code'] == 'OK' for r in records)
    for record in records:
        # Asked at their stamps: the scene holds frames up to the question's time only.
        assert record['num_frames'] >= 1
        family = FAMILIES[record['family']]
        if family.vsi:
            # The strict score is lmms-eval's (metrics.score_strict, tested against it).
            truth = (
                record['gt_value'] if family.numeric else OPTION_LETTERS[record['gt_choice_index']]
            )
            expected = score_strict(record['answer'], record['family'], truth, record['options'])
            assert record['strict']['score'] == expected
    strict = [r['strict']['score'] for r in records if r['family'] == 'object_counting']
    assert report['families']['object_counting']['strict'] == pytest.approx(100 * sum(strict) / 2)
    # Two scenes: the numeric chance baseline uses the other scene's ground truth.
    assert report['baselines']['chance']['method']['numeric_reference'] == {
        'other_scenes': 4,
        'leave_one_out': 0,
        'none': 0,
    }


def test_no_geometry_runs_the_same_model_without_the_spa3r_encoder(
    two_scenes, tmp_path, monkeypatch
):
    from spa3r_ros.models.spa3r.model import Spa3R

    calls = []
    original = Spa3R.encode

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Spa3R, 'encode', counting)
    scene = str(two_scenes / 'scene_0000')
    code, on = _eval([scene], tmp_path / 'on.json')
    assert code == 0 and on['model']['geometry'] is True and calls
    calls.clear()
    code, off = _eval([scene, '--no-geometry'], tmp_path / 'off.json')
    assert code == 0 and off['model']['geometry'] is False and not calls
    assert off['model']['parameters'] == on['model']['parameters']
    assert [r['code'] for r in off['questions']] == ['OK'] * 4


def test_bad_qa_line_is_an_error_naming_file_and_line(tmp_path, capsys):
    scene = helpers.write_scene(tmp_path / 'scene', 0, qa=False)
    good = helpers.qa_record('object_counting', gt_value=3)
    bad = {**good, 'gt_value': 'three'}
    qa = scene / 'qa.jsonl'
    write_qa([good, bad], qa)
    code, _ = _eval([str(scene)])
    assert code == 2
    err = capsys.readouterr().err
    assert f'{qa}:2' in err and 'gt_value' in err


def test_bag_without_camera_topic_is_an_error_naming_the_bag(tmp_path, capsys):
    # Only a depth stream: no camera topic for the engine.
    bag = write_demo_bag(
        tmp_path / 'depth_only', num_frames=2, camera_topic='/camera/depth/image_raw'
    )
    qa = tmp_path / 'qa.jsonl'
    write_qa([helpers.qa_record('object_counting', gt_value=3)], qa)
    code, _ = _eval([str(bag), '--qa', str(qa)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(bag) in err and 'no camera topic' in err


def test_one_qa_file_for_several_scenes_is_refused(two_scenes, tmp_path, capsys):
    qa = tmp_path / 'qa.jsonl'
    write_qa([helpers.qa_record('object_counting', gt_value=3)], qa)
    assert _eval([str(two_scenes), '--qa', str(qa)])[0] == 2
    assert 'several scenes' in capsys.readouterr().err


def test_scene_without_qa_file_gets_generated_questions(tmp_path, monkeypatch, capsys):
    received = {}

    def generate_qa(path, *, scene=None, per_family, seed):
        received.update(path=Path(path), scene=scene, per_family=per_family, seed=seed)
        return [
            helpers.qa_record('object_counting', helpers.BAG_START + 0.4, gt_value=2),
            helpers.qa_record('camera_distance', helpers.BAG_START + 0.8, gt_value=1.0),
        ]

    fake = types.ModuleType('spa3r_ros.data.qa.generate')
    fake.generate_qa = generate_qa
    monkeypatch.setitem(sys.modules, 'spa3r_ros.data.qa.generate', fake)
    scene = helpers.write_scene(tmp_path / 'scene_0000', 0, qa=False)
    code, report = _eval([str(scene), '--per-family', '2', '--seed', '7'], tmp_path / 'r.json')
    assert code == 0
    assert received == {'path': scene, 'scene': None, 'per_family': 2, 'seed': 7}
    assert 'questions generated with seed 7' in capsys.readouterr().err
    assert report['data']['generated'] is True and report['data']['seeds'] == [7]
    (entry,) = report['data']['scenes']
    assert entry['questions_from'] == 'generated' and entry['qa_file'] is None
    assert entry['seed'] == 7
    assert [r['family'] for r in report['questions']] == ['object_counting', 'camera_distance']


def test_checkpoint_folder_gives_the_presets_answers(two_scenes, tmp_path):
    from spa3r_ros.models.bundle import build_tiny_random, save_scene_models

    folder = save_scene_models(build_tiny_random(seed=0), tmp_path / 'ckpt')
    scene = two_scenes / 'scene_0001'
    code, preset = _eval([str(scene)], tmp_path / 'preset.json')
    assert code == 0
    code, saved = _eval([str(scene), '--checkpoint', str(folder)], tmp_path / 'ckpt.json')
    assert code == 0
    assert saved['model']['kind'] == 'checkpoint' and saved['model']['preset'] is None
    assert saved['model']['checkpoint'] == str(folder)
    assert [r['answer'] for r in saved['questions']] == [r['answer'] for r in preset['questions']]

    # The shared model options: spa3r replay takes the folder as well.
    answers = {}
    for name, option in (
        ('preset', ['--preset', 'tiny-random']),
        ('ckpt', ['--checkpoint', str(folder)]),
    ):
        out = tmp_path / f'{name}.jsonl'
        argv = ['replay', str(scene / 'bag'), '--questions', str(scene / 'qa.jsonl')]
        assert spa3r_main([*argv, '--out', str(out), *option, *COMMON]) == 0
        answers[name] = [(a['answer'], a['value'], a['choice_index']) for a in read_answers(out)]
    assert answers['ckpt'] == answers['preset'] and len(answers['ckpt']) == 4


def test_a_bundles_trained_window_is_the_default_and_the_report_records_the_settings(
    two_scenes, tmp_path
):
    from dataclasses import replace

    from spa3r_ros.models.bundle import build_tiny_random, save_scene_models

    folder = save_scene_models(
        replace(build_tiny_random(seed=0), keyframe_window=1), tmp_path / 'w1'
    )
    scene = str(two_scenes / 'scene_0000')
    code, default = _eval([scene], tmp_path / 'default.json')
    assert code == 0 and default['model']['keyframe_window'] == 16
    assert default['model']['numeric_decoding'] == 'greedy'
    code, trained = _eval([scene, '--checkpoint', str(folder)], tmp_path / 'trained.json')
    assert code == 0 and trained['model']['keyframe_window'] == 1
    assert max(q['num_frames'] for q in trained['questions']) <= 2  # 1 keyframe + the view
    code, chosen = _eval(
        [
            scene,
            '--checkpoint',
            str(folder),
            '--window',
            '4',
            '--numeric-decoding',
            'expected_mra',
        ],
        tmp_path / 'chosen.json',
    )
    assert code == 0 and chosen['model']['keyframe_window'] == 4
    assert chosen['model']['numeric_decoding'] == 'expected_mra'


def test_preset_and_checkpoint_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        spa3r_main(['eval', str(tmp_path), '--preset', 'tiny-random', '--checkpoint', 'x'])
    assert exit_info.value.code == 2
    assert 'not allowed with argument' in capsys.readouterr().err


def test_missing_checkpoint_is_an_error(two_scenes, tmp_path, capsys):
    missing = tmp_path / 'nothing'
    code, _ = _eval([str(two_scenes / 'scene_0000'), '--checkpoint', str(missing)])
    assert code == 2 and str(missing) in capsys.readouterr().err


def _write_scene_json(folder: Path, topics: dict[str, str]) -> None:
    from spa3r_ros.data.world.scene_json import (
        CameraSpec,
        FrameSpec,
        ObjectSpec,
        Pose,
        RoomSpec,
        SceneSpec,
        write_scene,
    )

    identity = Pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    spec = SceneSpec(
        seed=0,
        room=RoomSpec(((0.0, 0.0), (4.0, 0.0), (4.0, 3.0), (0.0, 3.0)), 2.5, 12.0),
        objects=(ObjectSpec(0, 'box', (1.0, 1.0, 0.25), (0.5, 0.5, 0.5), 0.0),),
        camera=CameraSpec(98, 56, 50.0, 50.0, 49.0, 28.0),
        camera_mount=identity,
        frames=(FrameSpec(helpers.BAG_START, identity, {0: 10}),),
        topics=topics,
        frame_rate_hz=helpers.RATE_HZ,
    )
    write_scene(spec, folder / 'scene.json')


def test_scene_json_names_the_topics(tmp_path, capsys):
    scene = helpers.write_scene(tmp_path / 'scene_0000', 0)
    # The world's topic names; this demo bag records its camera elsewhere.
    _write_scene_json(scene, {'rgb': '/camera/color/image_raw', 'odom': '/odom'})
    code, _ = _eval([str(scene)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no camera topic '/camera/color/image_raw'" in err and str(scene / 'bag') in err
    # The command line wins over scene.json.
    code, report = _eval([str(scene), '--image-topic', '/camera/image_raw'], tmp_path / 'r.json')
    assert code == 0
    assert report['data']['scenes'][0]['topics'] == {
        'images': ['/camera/image_raw'],
        'odometry': '/odom',
    }


@pytest.mark.parametrize(
    ('args', 'option'),
    [(['--per-family', '0'], '--per-family'), (['--seed', '-1'], '--seed')],
)
def test_bad_arguments_exit_2_naming_the_option(args, option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        spa3r_main(['eval', str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert f'argument {option}' in capsys.readouterr().err

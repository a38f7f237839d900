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

"""Trained presets are what their model cards say: size, files, and the score on a fixed set."""

import json

import pytest

from spa3r_ros.models.bundle import load_preset, load_registry, trained_preset_folder
from spa3r_ros.tools.card_check import CARD_CHECK_FILE, card_check_path, compare, measure

TRAINED = sorted(name for name, entry in load_registry().items() if entry['kind'] == 'trained')
#: The issue's size limit for a shipped model's files.
MAX_BYTES = 25 * 1024 * 1024


def test_there_is_a_trained_preset():
    assert 'synthetic-small' in TRAINED


@pytest.mark.parametrize('preset', TRAINED)
def test_trained_preset_ships_small_safetensors_a_card_and_loads(preset):
    entry = load_registry()[preset]
    folder = trained_preset_folder(preset, entry)
    files = [p for p in folder.rglob('*') if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    assert not [p for p in files if p.suffix in ('.pt', '.pth', '.bin', '.ckpt')]  # no pickles
    assert (folder / 'vlm' / 'model.safetensors').is_file()
    card = (folder / 'MODEL_CARD.md').read_text()
    for section in ('Training data', 'Reproduce', 'Evaluation', 'Licence', 'Limitations'):
        assert f'## {section}' in card, section
    check = json.loads((folder / CARD_CHECK_FILE).read_text())
    # The card quotes the check's scores.
    assert f'{check["strict"]:.2f}' in card and f'{check["lenient"]:.2f}' in card
    models = load_preset(preset, device='cpu')
    assert models.model_id == preset
    assert f'{models.parameter_count():,}' in card


@pytest.mark.parametrize('preset', TRAINED)
def test_trained_preset_scores_what_its_card_says_on_the_fixed_held_out_set(preset, tmp_path):
    expected = json.loads(card_check_path(preset).read_text())
    assert expected['world']['seed'] >= 1_000_000  # held-out seeds only
    measured = measure(preset, expected, tmp_path)
    assert compare(expected, measured) == []
    # The check can fail: a score off by more than the tolerance is reported.
    off = {**measured, 'strict': measured['strict'] + 2 * expected['tolerance'] + 0.01}
    assert compare(expected, off) and 'strict' in compare(expected, off)[0]

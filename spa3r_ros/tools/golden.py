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

"""Golden-vector runner: rebuild models from golden folders, run every case, report every tensor.

The command line is ``spa3r golden [--threads N] DIR [DIR ...]`` (:mod:`spa3r_ros.cli.golden`).
For each folder the first case kind whose ``detect`` accepts it runs; each compared tensor prints
one line with PASS/FAIL, the largest absolute and relative error and the tolerances used (the
rules live in :func:`~spa3r_ros.tools.golden_cases.base.tolerance_for`). The exit status is 0
when everything passes, 1 when any tensor fails or a case raises, 2 when a folder is not
recognised by any kind.

Adding a case kind: write ``spa3r_ros/tools/golden_cases/<kind>.py`` exposing

* ``KIND: str`` -- a short name for the report;
* ``detect(folder: pathlib.Path) -> bool`` -- cheap, reads only ``config.json`` / file names;
* ``run(folder: pathlib.Path) -> list[Comparison]`` -- rebuild the model from the folder's
  ``config.json`` + ``weights.safetensors`` (cast float16 weights to float32), run every stored
  case (see ``base.iter_cases``) and compare each stored output with ``base.compare`` /
  ``base.compare_all``. Derive every size from config.json and tensor shapes.

and add the module to :data:`CASE_KINDS` below (order matters: the first match wins).
"""

from pathlib import Path
from types import ModuleType

from spa3r_ros.tools.golden_cases import spa3r, vggt, vlm
from spa3r_ros.tools.golden_cases.base import compare, Comparison, tolerance_for

__all__ = [
    'CASE_KINDS',
    'Comparison',
    'compare',
    'detect_kind',
    'run_folder',
    'tolerance_for',
]

# Explicit registry of case kinds (no plugin discovery).
CASE_KINDS: tuple[ModuleType, ...] = (vggt, spa3r, vlm)


def detect_kind(folder: Path) -> ModuleType | None:
    """The first case kind that recognises ``folder``, or None."""
    for kind in CASE_KINDS:
        if kind.detect(folder):
            return kind
    return None


def run_folder(folder: Path) -> list[Comparison]:
    """Run every case of a recognised folder; an exception becomes one failed comparison.

    Raises:
        ValueError: if no case kind recognises the folder.
    """
    kind = detect_kind(folder)
    if kind is None:
        raise ValueError(
            f'{folder}: not a recognised golden folder (kinds: {[k.KIND for k in CASE_KINDS]})'
        )
    try:
        return kind.run(folder)
    except Exception as err:  # report and keep going with the other folders
        nan = float('nan')
        return [
            Comparison(
                folder.name, '<run>', nan, nan, 0.0, 0.0, False, f'{type(err).__name__}: {err}'
            )
        ]


def format_comparison(c: Comparison) -> str:
    """One report line."""
    status = 'PASS' if c.passed else 'FAIL'
    line = (
        f'{status} {c.case}:{c.name} max_abs={c.max_abs:.3e} max_rel={c.max_rel:.3e} '
        f'(rtol={c.rtol:g}, atol={c.atol:g})'
    )
    return f'{line} {c.note}' if c.note else line

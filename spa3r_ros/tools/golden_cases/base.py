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

"""What every golden case module shares: the comparison record, the tolerance rules, file helpers.

Kept apart from :mod:`spa3r_ros.tools.golden` so case modules can import it without an import
cycle (``golden`` imports every case module).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
import torch
from torch import Tensor

# The golden README's limits (tolerances section).
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-4
LOOSE_ATOL_NAMES = ('world_points', 'intrinsic', 'depth_gt')
LOOSE_ATOL = 1e-3
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-6


@dataclass(frozen=True)
class Comparison:
    """The result of comparing one produced tensor with its stored reference.

    Attributes:
        case: ``<folder>/<case>`` (e.g. ``vggt_tiny/outputs``).
        name: the tensor's name in the outputs file.
        max_abs: largest absolute difference (``inf`` if shapes differ or nothing was produced).
        max_rel: largest ``|got - ref| / |ref|`` over elements with ``ref != 0``.
        rtol: relative tolerance applied (0 for exact comparisons).
        atol: absolute tolerance applied (0 for exact comparisons).
        passed: whether every element is within ``atol + rtol * |ref|`` (exact for int/bool).
        note: why it failed when it is not a numeric failure (missing tensor, shape, error).
    """

    case: str
    name: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    passed: bool
    note: str = ''


def tolerance_for(name: str, ref: Tensor) -> tuple[float, float]:
    """The ``(rtol, atol)`` the golden README prescribes for a reference tensor.

    Rules: integer and bool tensors are exact ``(0, 0)``; scalar float tensors whose name
    contains ``loss`` use ``(1e-5, 1e-6)``; tensors whose last name component is
    ``world_points``, ``intrinsic`` or ``depth_gt`` use ``(1e-4, 1e-3)``; every other float
    tensor ``(1e-4, 1e-4)``.

    Args:
        name: the tensor name in the outputs file (prefixes like ``asym.`` are allowed).
        ref: the reference tensor.

    Returns:
        ``(rtol, atol)``.
    """
    if not ref.is_floating_point():
        return 0.0, 0.0
    if ref.ndim == 0 and 'loss' in name:
        return LOSS_RTOL, LOSS_ATOL
    if name.rsplit('.', 1)[-1] in LOOSE_ATOL_NAMES:
        return FLOAT_RTOL, LOOSE_ATOL
    return FLOAT_RTOL, FLOAT_ATOL


def compare(case: str, name: str, got: Tensor | None, ref: Tensor) -> Comparison:
    """Compare a produced tensor with its reference under :func:`tolerance_for`.

    Args:
        case: case label for the report.
        name: tensor name.
        got: the produced tensor, or None if the implementation did not produce it.
        ref: the reference.

    Returns:
        The :class:`Comparison`.
    """
    rtol, atol = tolerance_for(name, ref)
    inf = float('inf')
    if got is None:
        return Comparison(case, name, inf, inf, rtol, atol, False, 'not produced')
    if tuple(got.shape) != tuple(ref.shape):
        return Comparison(
            case,
            name,
            inf,
            inf,
            rtol,
            atol,
            False,
            f'shape {list(got.shape)} != reference {list(ref.shape)}',
        )
    if got.numel() == 0:
        return Comparison(case, name, 0.0, 0.0, rtol, atol, True)
    g = got.detach().cpu().double()
    r = ref.detach().cpu().double()
    diff = (g - r).abs()
    diff = torch.where(torch.isnan(g) & torch.isnan(r), torch.zeros_like(diff), diff)
    diff = torch.nan_to_num(diff, nan=inf)
    nonzero = r != 0
    max_rel = float((diff[nonzero] / r[nonzero].abs()).max()) if nonzero.any() else 0.0
    if max_rel == 0.0 and not nonzero.all() and float(diff[~nonzero].max()) > 0:
        max_rel = inf
    passed = bool((diff <= atol + rtol * r.abs()).all())
    return Comparison(case, name, float(diff.max()), max_rel, rtol, atol, passed)


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON file (a dict at the top level)."""
    return json.loads(Path(path).read_text())


def golden_config(folder: Path) -> dict[str, Any] | None:
    """The folder's ``config.json`` as a dict, or None unless it also has ``weights.safetensors``.

    Every case kind's ``detect`` starts here and then looks for the keys of its own layout.
    """
    cfg = folder / 'config.json'
    if not cfg.is_file() or not (folder / 'weights.safetensors').is_file():
        return None
    try:
        data = read_json(cfg)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def iter_cases(folder: Path) -> Iterator[tuple[str, Path, Path]]:
    """Every ``(<x>_)inputs.safetensors`` with a matching ``(<x>_)outputs.safetensors``.

    Yields:
        ``(case label, inputs path, outputs path)``, sorted by label; the label is the outputs
        file stem.
    """
    for inputs in sorted(folder.glob('*inputs.safetensors')):
        prefix = inputs.name[: -len('inputs.safetensors')]
        outputs = folder / f'{prefix}outputs.safetensors'
        if outputs.is_file():
            yield outputs.name[: -len('.safetensors')], inputs, outputs


def load_tensors(path: Path) -> dict[str, Tensor]:
    """Read a safetensors file onto the CPU."""
    return load_file(path)


def compare_all(
    case: str, produced: Mapping[str, Tensor | None], reference: Mapping[str, Tensor]
) -> list[Comparison]:
    """Compare every reference tensor (a missing produced tensor fails)."""
    return [compare(case, name, produced.get(name), ref) for name, ref in reference.items()]

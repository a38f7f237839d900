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

"""View masking for Spa3R training: context views (encoded) and masked views (predicted).

View 0 is always context. Among views 1 .. V-1, ``int(V * (1 - mask_ratio)) - 1`` random views are
also context and the rest are masked, so every scene has the same number of context views (the
symmetric mode stacks them). In the asymmetric mode a single aggregator run uses an attention
mask: a query token of view a may attend a key token of view b iff view a is masked or view b is
not, i.e. context views see only context views and masked views see everything (that mask is
built by :func:`spa3r_ros.models.vggt.aggregator.view_attention_mask`).

References:
    hustvl/Spa3R ``spa3r/models/spa3r.py::_random_masking`` and ``spa3r/models/masked_vggt.py``.
"""

import torch
from torch import Tensor


def num_context_views(num_views: int, mask_ratio: float) -> int:
    """Number of context (unmasked) views, view 0 included.

    The reference computes ``int(V * (1 - r)) - 1`` context views besides view 0; when that is
    negative its slice ``[:, :-1]`` would unmask all but one view, which is clearly unintended, so
    here it is clamped to zero (only view 0 is context). Both agree whenever
    ``int(V * (1 - r)) >= 1``.

    Args:
        num_views: V >= 1.
        mask_ratio: r in [0, 1].

    Returns:
        The count, in ``[1, V]``.
    """
    if num_views < 1:
        raise ValueError(f'num_views must be >= 1, got {num_views}')
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
    extra = max(int(num_views * (1 - mask_ratio)) - 1, 0)
    return 1 + min(extra, num_views - 1)


def random_view_mask(
    batch: int,
    num_views: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw a view mask the way the reference does.

    Uniform noise ``[B, V-1]`` is argsorted; the ``num_context_views - 1`` views with the smallest
    noise become context. With the same (CPU) random state as the reference, the result is the
    same.

    Args:
        batch: B.
        num_views: V.
        mask_ratio: fraction of views to mask.
        generator: optional CPU random generator (default: torch's global one).
        device: device of the returned mask.

    Returns:
        bool ``[B, V]``, True = masked (target-only) view; column 0 is always False.
    """
    keep = num_context_views(num_views, mask_ratio) - 1
    noise = torch.rand(batch, num_views - 1, generator=generator)
    ids_restore = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    shuffled = torch.ones(batch, num_views - 1)
    shuffled[:, :keep] = 0
    mask = torch.gather(shuffled, 1, ids_restore).bool()
    mask = torch.cat([torch.zeros(batch, 1, dtype=torch.bool), mask], dim=1)
    return mask.to(device) if device is not None else mask


def check_view_mask(view_mask: Tensor, batch: int, num_views: int) -> None:
    """Validate a view mask for Spa3R.

    Args:
        view_mask: bool ``[B, V]``.
        batch: expected B.
        num_views: expected V.

    Raises:
        ValueError: wrong shape or dtype, a masked view 0, or differing context counts.
    """
    if view_mask.dtype != torch.bool or tuple(view_mask.shape) != (batch, num_views):
        raise ValueError(
            f'view_mask must be bool [{batch}, {num_views}], got {view_mask.dtype} '
            f'{tuple(view_mask.shape)}'
        )
    if bool(view_mask[:, 0].any()):
        raise ValueError('view_mask masks view 0, which must always be a context view')
    context = (~view_mask).sum(dim=1)
    if bool((context != context[0]).any()):
        raise ValueError(
            f'every scene needs the same number of context views, got {context.tolist()}'
        )


def select_views(x: Tensor, keep: Tensor) -> Tensor:
    """Gather the kept views of every scene: ``[B, V, ...] -> [B, V', ...]``.

    Args:
        x: per-view tensor ``[B, V, ...]``.
        keep: bool ``[B, V]`` with the same count of True in every row.

    Returns:
        ``[B, V', ...]``, views in their original order.
    """
    counts = keep.sum(dim=1)
    if bool((counts != counts[0]).any()):
        raise ValueError(f'select_views needs equal counts per scene, got {counts.tolist()}')
    return x[keep].reshape(x.shape[0], -1, *x.shape[2:])

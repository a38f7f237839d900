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

"""A per-frame cache of DINOv2 patch tokens for the aggregator.

The patch embedding of a frame does not depend on the other frames, so in a sliding frame buffer
only new frames need it. The cache is keyed by a caller-chosen frame id (a ROS stamp, a counter)
together with the image size, bounded, and drops the least recently used entries.
"""

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence

import torch
from torch import Tensor

from spa3r_ros.models.vggt.aggregator import Aggregator


class PatchTokenCache:
    """Least-recently-used cache of per-frame patch tokens.

    Args:
        max_frames: entries kept (oldest use dropped first).
    """

    def __init__(self, max_frames: int = 64) -> None:
        if max_frames < 1:
            raise ValueError(f'max_frames must be >= 1, got {max_frames}')
        self.max_frames = max_frames
        self._store: OrderedDict[Hashable, Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every entry (e.g. after loading other weights)."""
        self._store.clear()

    def frame_ids(self) -> list[Hashable]:
        """Ids of the cached frames, least recently used first."""
        return [key[0] for key in self._store]

    def discard(self, frame_ids: Iterable[Hashable]) -> int:
        """Forget the entries of these frames (at every image size), e.g. evicted keyframes.

        Args:
            frame_ids: ids as given to :meth:`patch_tokens`; unknown ids are ignored.

        Returns:
            How many entries were removed.
        """
        gone = set(frame_ids)
        keys = [k for k in self._store if k[0] in gone]
        for key in keys:
            del self._store[key]
        return len(keys)

    @torch.no_grad()
    def patch_tokens(
        self, aggregator: Aggregator, images: Tensor, frame_ids: Sequence[Hashable]
    ) -> Tensor:
        """Patch tokens of one scene's frames, computing only the frames not cached yet.

        Args:
            aggregator: the model whose ``embed_frames`` fills the cache.
            images: ``[S, 3, H, W]`` RGB in [0, 1].
            frame_ids: S hashable ids, one per frame; the same id must mean the same pixels.

        Returns:
            ``[1, S, P, D]``, ready for ``aggregator(images[None], patch_tokens=...)``.

        Raises:
            ValueError: if the number of ids does not match S or ids repeat.
        """
        if images.ndim != 4 or len(frame_ids) != images.shape[0]:
            raise ValueError(
                f'expected images [S, 3, H, W] and S frame ids, got '
                f'{tuple(images.shape)} and {len(frame_ids)} ids'
            )
        if len(set(frame_ids)) != len(frame_ids):
            raise ValueError(f'frame ids must be unique, got {list(frame_ids)}')
        size = tuple(images.shape[-2:])
        keys = [(fid, size) for fid in frame_ids]
        todo = [i for i, k in enumerate(keys) if k not in self._store]
        if todo:
            new = aggregator.embed_frames(images[todo][:, None])  # [n, 1, P, D]
            for j, i in enumerate(todo):
                self._store[keys[i]] = new[j, 0]
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        for k in keys:
            self._store.move_to_end(k)
        tokens = torch.stack([self._store[k] for k in keys])[None]
        while len(self._store) > self.max_frames:
            self._store.popitem(last=False)
        return tokens

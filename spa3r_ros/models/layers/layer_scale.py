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

"""LayerScale: a learned per-channel gain on a residual branch (CaiT, used by DINOv2 and VGGT).

References: facebookresearch/dinov2 ``dinov2/layers/layer_scale.py``.
"""

import torch
from torch import nn, Tensor


class LayerScale(nn.Module):
    """Multiply the last dimension by a learned vector ``gamma``.

    Args:
        dim: channels C.
        init_values: initial value of every entry of ``gamma``.
    """

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        """Scale ``x`` of shape ``[..., C]`` channel-wise (not in place)."""
        return x * self.gamma

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

"""The two-layer MLP used by Spa3R blocks and by its ``geo``/``sem``/``depth_prob`` heads.

References:
    hustvl/Spa3R ``spa3r/models/layers/mlp.py`` (timm/DINOv2 ``Mlp``; keys ``fc1``/``fc2``).
"""

from torch import nn, Tensor


class Mlp(nn.Module):
    """Linear -> exact GELU -> Linear.

    Args:
        in_features: input width.
        hidden_features: hidden width.
        out_features: output width.
        bias: whether both linear layers have a bias.
    """

    def __init__(
        self, in_features: int, hidden_features: int, out_features: int, bias: bool = True
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to the last dimension.

        Args:
            x: ``[..., in_features]``.

        Returns:
            ``[..., out_features]``.
        """
        return self.fc2(self.act(self.fc1(x)))

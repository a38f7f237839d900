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

"""The transformer feed-forward block: Linear, exact GELU, Linear.

References: facebookresearch/dinov2 ``dinov2/layers/mlp.py`` (same key names ``fc1``/``fc2``).
"""

from torch import nn, Tensor


class Mlp(nn.Module):
    """Two-layer perceptron with an exact (erf) GELU in between.

    Args:
        in_features: input channels.
        hidden_features: hidden channels (defaults to ``in_features``).
        out_features: output channels (defaults to ``in_features``).
        bias: whether both linear layers have a bias.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``[..., in_features]`` to ``[..., out_features]``."""
        return self.fc2(self.act(self.fc1(x)))

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

"""Image to patch tokens with one strided convolution (ViT patch embedding).

References: facebookresearch/dinov2 ``dinov2/layers/patch_embed.py`` (key name ``proj``).
"""

from torch import nn, Tensor


class PatchEmbed(nn.Module):
    """Split an image into non-overlapping square patches and embed each linearly.

    Args:
        patch_size: patch side p in pixels.
        in_chans: input channels (3 for RGB).
        embed_dim: output width D.
    """

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 1024) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """Embed patches.

        Args:
            x: images ``[N, C, H, W]``; H and W must be multiples of the patch size.

        Returns:
            Tokens ``[N, P, D]`` with ``P = (H / p) * (W / p)`` in row-major patch order.

        Raises:
            ValueError: if H or W is not a multiple of the patch size.
        """
        _, _, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f'image size {h}x{w} is not a multiple of the patch size {p}')
        return self.proj(x).flatten(2).transpose(1, 2)

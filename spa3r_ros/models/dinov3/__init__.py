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

"""The DINOv3 semantic teacher of Spa3R's PSFM training, on transformers' ``DINOv3ViTModel``.

Modules: `config` (the ViT-L/16 configuration of the reference and a tiny random one), `keys`
(the facebookresearch/dinov3 hub state-dict layout mapped onto ``DINOv3ViTModel``'s keys, and
back, every key checked) and `teacher` (:class:`DINOv3Teacher`: patch tokens with the reference's
per-block RoPE, and the loaders from hub files and Spa3R Lightning checkpoints).
"""

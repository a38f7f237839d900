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

"""Spa3R: a scene latent from frozen VGGT features, trained by predictive spatial field modelling.

Modules: `prope` (PRoPE attention of the decoder), `block` and `transformer` (Spa3R's pre-norm
transformer with registers; the encoder reuses the shared attention, MLP and 2-D RoPE layers),
`camera_rays` (per-patch ray directions), `masking` (view masks), `losses` (PSFM losses),
`constants` (dictionary keys), `checkpoint` (loading and saving) and `model` (:class:`Spa3R`).
"""

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

"""Names of the tensors Spa3R returns (dictionary keys), shared by the model, losses and tools."""

#: Camera rays ``[B, V, 3, hp, wp]`` fed to the pose tokenizer.
CAMERA_RAYS = 'camera_rays'
#: Pose tokens ``[B*V, P, D]`` (``pose_tokenizer(rays)``).
POSE_TOKENS = 'pose_tokens'
#: Decoder output ``[B*V, Q + P, D]`` (latents then ray tokens; registers removed).
DECODER_OUTPUT_FULL = 'decoder_output_full'
#: Per-view ray-token part of the decoder output ``[B, V, P, D]``.
DECODER_TOKENS = 'decoder_tokens'
#: Predicted VGGT features ``[B, V, P, aggregator_dim]``.
PRED_GEO = 'pred_geo'
#: Predicted semantic features ``[B, V, P, sem_dim]``.
PRED_SEM = 'pred_sem'
#: Depth probe output ``[B, V, P, 1]`` (computed on the detached decoder tokens).
PRED_DEPTH_PROB = 'pred_depth_prob'

#: Batch key: images ``[B, V, 3, H, W]`` in [0, 1].
BATCH_IMAGES = 'images'
#: Batch key: semantic targets ``[B, V, P, sem_dim]`` (DINOv3 patch features in the reference).
BATCH_SEM_TARGETS = 'sem_targets'

#: Loss names, as the reference logs them.
LOSS_GEO_L1 = 'geo/l1'
LOSS_GEO_COS = 'geo/cos'
LOSS_SEM_L1 = 'sem/l1'
LOSS_SEM_COS = 'sem/cos'
LOSS_DEPTH_PROB = 'depth_prob'
#: Unweighted sum of the five terms (what the reference optimises).
LOSS_TOTAL = 'loss'
LOSS_TERMS = (LOSS_GEO_L1, LOSS_GEO_COS, LOSS_SEM_L1, LOSS_SEM_COS, LOSS_DEPTH_PROB)

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

"""Dictionary keys of VGGT's predictions (one place, like LeRobot's constants)."""

# VGGT predictions (names as in the reference's prediction dict).
PRED_POSE_ENC = 'pose_enc'
PRED_POSE_ENC_LIST = 'pose_enc_list'
PRED_DEPTH = 'depth'
PRED_DEPTH_CONF = 'depth_conf'
PRED_WORLD_POINTS = 'world_points'
PRED_WORLD_POINTS_CONF = 'world_points_conf'
PRED_IMAGES = 'images'
PRED_AGGREGATED_TOKENS = 'aggregated_tokens'
PRED_PATCH_START_IDX = 'patch_start_idx'
PRED_EXTRINSIC = 'extrinsic'
PRED_INTRINSIC = 'intrinsic'

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

"""Inference context: no autograd, and bf16 autocast on CUDA devices that support it.

CPU inference stays in float32. On CUDA, bfloat16 autocast is used when the device supports it
(Ampere and newer), float16 otherwise, like the reference's ``Spa3REncoder.encode``. The VGGT heads
turn autocast off themselves. TF32 is left as the caller configured it.
"""

from collections.abc import Iterator
import contextlib

import torch


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``device``: None on CPU, bf16 or fp16 on CUDA."""
    device = torch.device(device)
    if device.type != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def weights_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype the presets load weights in: bf16 on CUDA (half the memory), fp32 elsewhere."""
    return torch.bfloat16 if torch.device(device).type == 'cuda' else torch.float32


@contextlib.contextmanager
def inference_context(device: torch.device | str) -> Iterator[None]:
    """``torch.inference_mode`` plus the autocast of :func:`autocast_dtype` for ``device``."""
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type='cuda', dtype=dtype):
                yield

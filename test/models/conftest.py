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


"""Model-tier fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run tiny models on one thread.

    On a shared 2-core machine a thread pool only adds contention (about 20x slower); the golden
    tolerances still hold (golden README: 1 vs 2 threads moves outputs by < 5e-7 relative).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

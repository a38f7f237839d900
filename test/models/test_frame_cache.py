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

"""Per-frame patch-token cache: same aggregator outputs as without it, only new frames computed."""

import pytest
import torch

from spa3r_ros.models.inference import autocast_dtype, inference_context
from spa3r_ros.models.vggt.frame_cache import PatchTokenCache
from spa3r_ros.tools.golden_cases import vggt as vggt_case


@pytest.fixture(scope='module')
def aggregator(golden_dir):
    return vggt_case.build_model(golden_dir / 'vggt_tiny').aggregator


def test_cached_and_uncached_outputs_are_equal(aggregator):
    frames = torch.rand(5, 3, 28, 42)
    cache = PatchTokenCache(max_frames=4)
    with torch.no_grad():
        first = frames[:3]
        tokens = cache.patch_tokens(aggregator, first, ['a', 'b', 'c'])
        cached, _ = aggregator(first[None], output_layers=[-1], patch_tokens=tokens)
        plain, _ = aggregator(first[None], output_layers=[-1])
        torch.testing.assert_close(cached[-1], plain[-1])
        assert (cache.misses, cache.hits) == (3, 0)
        # Slide the window: only 'd' and 'e' are new.
        window = frames[2:]
        tokens = cache.patch_tokens(aggregator, window, ['c', 'd', 'e'])
        cached, _ = aggregator(window[None], output_layers=[-1], patch_tokens=tokens)
        plain, _ = aggregator(window[None], output_layers=[-1])
    torch.testing.assert_close(cached[-1], plain[-1])
    assert (cache.misses, cache.hits) == (5, 1)
    assert len(cache) == 4  # bounded; 'a' was the least recently used


def test_cache_rejects_bad_ids(aggregator):
    cache = PatchTokenCache()
    with pytest.raises(ValueError, match='unique'):
        cache.patch_tokens(aggregator, torch.rand(2, 3, 28, 28), ['x', 'x'])
    with pytest.raises(ValueError, match='frame ids'):
        cache.patch_tokens(aggregator, torch.rand(2, 3, 28, 28), ['x'])


def test_cpu_inference_stays_fp32(aggregator):
    assert autocast_dtype('cpu') is None
    with inference_context('cpu'):
        out, _ = aggregator(torch.rand(1, 2, 3, 28, 28), output_layers=[-1])
    assert out[-1].dtype == torch.float32 and out[-1].is_inference()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_autocast_dtype(aggregator):
    model = aggregator.to('cuda')
    ones = torch.ones(2, 2, device='cuda')
    with inference_context('cuda'):
        assert (ones @ ones).dtype == autocast_dtype('cuda')
        out, _ = model(torch.rand(1, 2, 3, 28, 28, device='cuda'), output_layers=[-1])
    assert torch.isfinite(out[-1].float()).all()
    model.to('cpu')

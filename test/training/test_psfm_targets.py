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

"""PSFM semantic targets: shape on the Spa3R grid, reference vs deterministic, forward_loss."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spa3r_ros.models.dinov3.config import IMAGENET_MEAN, IMAGENET_STD
from spa3r_ros.models.spa3r import constants as K
from spa3r_ros.models.vlm.tiny import tiny_spa3r_config
from spa3r_ros.tools.golden_cases import spa3r as spa3r_case
from spa3r_ros.training.psfm_targets import (
    build_semantic_targets,
    build_semantic_teacher,
    check_sem_dim,
    SemanticTargets,
    spa3r_patch_grid,
    TINY_SEM_DIM,
)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def _targets(mode='reference', **teacher_overrides) -> SemanticTargets:
    teacher = build_semantic_teacher('tiny')
    for key, value in teacher_overrides.items():
        setattr(teacher.config, key, value)
    return SemanticTargets(teacher, patch_grid_of=spa3r_patch_grid(14), mode=mode)


def _images(bsz=1, views=2, height=42, width=56, seed=0):
    return torch.rand(bsz, views, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_shape_matches_forward_loss_for_the_tiny_preset():
    config = tiny_spa3r_config()
    teacher = build_semantic_teacher('tiny', sem_dim=config.sem_dim)
    targets = SemanticTargets(teacher, patch_grid_of=spa3r_patch_grid(config.patch_size))
    check_sem_dim(targets, config.sem_dim)
    out = targets(_images(bsz=2, views=3, height=42, width=70))
    # Spa3R.forward_loss expects [B, V, (H / patch) * (W / patch), sem_dim].
    assert out.shape == (2, 3, 3 * 5, config.sem_dim)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert config.sem_dim == TINY_SEM_DIM
    # The one-call builder gives the same targets (same seed, same grid).
    built = build_semantic_targets(config, kind='tiny', mode='deterministic')
    torch.testing.assert_close(
        built(_images(bsz=2, views=3, height=42, width=70)),
        SemanticTargets(teacher, patch_grid_of=spa3r_patch_grid(14), mode='deterministic')(
            _images(bsz=2, views=3, height=42, width=70)
        ),
        atol=0,
        rtol=0,
    )


def test_pipeline_is_the_reference_recipe():
    """224 x 224 bilinear, ImageNet normalisation, x_norm_patchtokens, bilinear to the grid."""
    targets = _targets(mode='deterministic')
    images = _images(bsz=1, views=2, height=28, width=42)
    got = targets(images)
    pixels = F.interpolate(images[0], (224, 224), mode='bilinear', align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    vit = targets.teacher.vit.eval()
    with torch.no_grad():
        hidden = vit(pixel_values=(pixels - mean) / std).last_hidden_state[:, 5:]
    grid = hidden.reshape(2, 14, 14, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, (2, 3), mode='bilinear', align_corners=False)
    expected = expected.flatten(2).transpose(1, 2)
    torch.testing.assert_close(got[0], expected, atol=1e-5, rtol=1e-5)


def test_deterministic_mode_repeats_even_in_training():
    targets = _targets(mode='deterministic').train()
    images = _images()
    torch.manual_seed(0)
    first = targets(images)
    torch.manual_seed(1)
    second = targets(images)
    assert torch.equal(first, second)
    assert not targets.teacher.training


def test_reference_mode_follows_torch_rng_while_training():
    targets = _targets(mode='reference').train()
    images = _images()
    torch.manual_seed(0)
    first = targets(images)
    assert targets.teacher.training
    torch.manual_seed(1)
    other = targets(images)
    torch.manual_seed(0)
    again = targets(images)
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3
    # Outside training (validation) the reference teacher is in eval mode: deterministic.
    deterministic = _targets(mode='deterministic')(images)
    assert (first - deterministic).abs().max() > 1e-3
    torch.testing.assert_close(targets.eval()(images), deterministic, atol=0, rtol=0)


def test_reference_equals_deterministic_without_jitter():
    images = _images()
    reference = _targets(mode='reference', pos_embed_rescale=None).train()
    deterministic = _targets(mode='deterministic', pos_embed_rescale=None).train()
    torch.manual_seed(3)
    torch.testing.assert_close(reference(images), deterministic(images), atol=0, rtol=0)


def test_teacher_is_frozen():
    targets = _targets().train()
    assert all(not p.requires_grad for p in targets.parameters())
    images = _images().requires_grad_(True)
    assert not targets(images).requires_grad


def test_bad_inputs_raise():
    targets = _targets()
    with pytest.raises(ValueError, match='B, V, 3, H, W'):
        targets(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match='multiple of the patch size 14'):
        targets(torch.rand(1, 1, 3, 30, 28))
    with pytest.raises(ValueError, match='mode'):
        SemanticTargets(build_semantic_teacher('tiny'), patch_grid_of=spa3r_patch_grid(), mode='x')
    with pytest.raises(ValueError, match='sem_dim=16'):
        build_semantic_teacher('vitl16', sem_dim=16)
    with pytest.raises(ValueError, match='no weights'):
        build_semantic_teacher('tiny', weights='x.pth')
    with pytest.raises(ValueError, match='kind'):
        build_semantic_teacher('vitb16')
    with pytest.raises(ValueError, match='expects sem_dim=40'):
        check_sem_dim(targets, 40)


def test_tiny_teacher_is_seeded():
    a = build_semantic_teacher('tiny', seed=4).vit.state_dict()
    b = build_semantic_teacher('tiny', seed=4).vit.state_dict()
    c = build_semantic_teacher('tiny', seed=5).vit.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_forward_loss_runs_with_these_targets(golden_dir: Path):
    """The tiny Spa3R with VGGT heads (the golden one) trains on the teacher's targets."""
    model = spa3r_case.build_model(golden_dir / 'spa3r_tiny')
    teacher = build_semantic_teacher('tiny', sem_dim=model.config.sem_dim)
    targets = SemanticTargets(teacher, patch_grid_of=spa3r_patch_grid(model.config.patch_size))
    targets.train()
    images = _images(bsz=1, views=4, height=28, width=42)
    batch = {K.BATCH_IMAGES: images, K.BATCH_SEM_TARGETS: targets(images)}
    out = model.forward_loss(batch)
    losses = out.losses
    assert all(torch.isfinite(v) for v in losses.values())
    losses[K.LOSS_TOTAL].backward()
    sem_head = model.heads['sem']
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in sem_head.parameters())

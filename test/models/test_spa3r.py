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

"""Spa3R on the tiny golden model: decoder path, encoder path, layers and masking rule."""

import dataclasses

import pytest
from safetensors.torch import load_file
import torch

from spa3r_ros.models.spa3r import constants as K
from spa3r_ros.models.spa3r.camera_rays import extrinsics_to_viewmats, get_camera_rays
from spa3r_ros.models.spa3r.masking import (
    check_view_mask,
    num_context_views,
    random_view_mask,
    select_views,
)
from spa3r_ros.models.spa3r.model import FROZEN_VGGT_PREFIXES, Spa3R
from spa3r_ros.models.spa3r.prope import PRoPEAttention, PRoPETransforms
from spa3r_ros.tools.golden_cases import spa3r as spa3r_case

RTOL = ATOL = 1e-4  # golden README tolerances for float tensors


@pytest.fixture(scope='module')
def tiny(golden_dir):
    """The tiny golden Spa3R with its weights (cast from float16 to float32)."""
    torch.set_num_threads(2)
    folder = golden_dir / 'spa3r_tiny'
    return spa3r_case.build_model(folder), folder


def test_decoder_matches_golden(tiny):
    model, folder = tiny
    inputs = load_file(folder / 'decoder_inputs.safetensors')
    ref = load_file(folder / 'decoder_outputs.safetensors')
    height, width = inputs['image_hw'].tolist()
    with torch.no_grad():
        out = model.decode(
            inputs['latents'], inputs['extrinsics'], inputs['intrinsics'], (height, width)
        )
    names = [
        K.CAMERA_RAYS,
        K.POSE_TOKENS,
        K.DECODER_OUTPUT_FULL,
        K.DECODER_TOKENS,
        K.PRED_GEO,
        K.PRED_SEM,
        K.PRED_DEPTH_PROB,
    ]
    assert sorted(names) == sorted(ref)
    for name in names:
        torch.testing.assert_close(out[name], ref[name], rtol=RTOL, atol=ATOL, msg=name)


def test_predict_matches_golden(tiny):
    model, folder = tiny
    images = load_file(folder / 'predict_inputs.safetensors')['images']
    ref = load_file(folder / 'predict_outputs.safetensors')
    with torch.no_grad():
        last = model.aggregate_last(images)
    torch.testing.assert_close(last, ref['spa3r_aggregated_tokens_last'], rtol=RTOL, atol=ATOL)
    latents = model.encode(images)
    assert latents.shape == (1, model.num_queries, model.config.embed_dim)
    assert latents.is_inference()
    torch.testing.assert_close(latents, ref['latents'], rtol=RTOL, atol=ATOL)


def test_encode_rejects_bad_images(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match='multiple of the patch size'):
        model.encode(torch.rand(1, 2, 3, 50, 98))
    with pytest.raises(ValueError, match=r'\[B, S, 3, H, W\]'):
        model.encode(torch.rand(2, 3, 56, 98))


def test_decode_rejects_bad_cameras(tiny):
    model, _ = tiny
    latents = torch.zeros(1, model.num_queries, model.config.embed_dim)
    extr = torch.eye(4)[:3].expand(1, 2, 3, 4)
    with pytest.raises(ValueError, match='intrinsics'):
        model.decode(latents, extr, torch.eye(3).expand(1, 3, 3, 3), (56, 98))
    with pytest.raises(ValueError, match='extrinsics'):
        model.decode(latents, torch.eye(4).expand(1, 2, 4, 4), torch.eye(3), (56, 98))


def test_own_modules_only_without_vggt(tiny):
    model, _ = tiny
    own = Spa3R(dataclasses.replace(model.config, vggt=None))
    keys = set(own.state_dict())
    assert keys == {k for k in model.state_dict() if not k.startswith(FROZEN_VGGT_PREFIXES)}
    with pytest.raises(ValueError, match='config.vggt is None'):
        own.encode(torch.rand(1, 1, 3, 56, 98))


def test_frozen_vggt_has_no_grad(tiny):
    model, _ = tiny
    assert not any(p.requires_grad for p in model.aggregator.parameters())
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_camera_rays_are_unit_and_centred():
    intr = torch.tensor([[10.0, 0.0, 3.5], [0.0, 10.0, 2.0], [0.0, 0.0, 1.0]])
    rays = get_camera_rays(intr, (4, 7))
    assert rays.shape == (3, 4, 7)
    torch.testing.assert_close(rays.norm(dim=0), torch.ones(4, 7))
    # The principal point (3.5, 2.0) lies on the corner between cells (1, 3) and (2, 3): x of
    # column 3 is (3.5 - 3.5) / 10 = 0 and rows 1 and 2 are mirror images in y.
    torch.testing.assert_close(rays[0, :, 3], torch.zeros(4))
    torch.testing.assert_close(rays[1, 1], -rays[1, 2])


def test_extrinsics_to_viewmats_pads():
    extr = torch.randn(2, 3, 3, 4)
    view = extrinsics_to_viewmats(extr)
    assert view.shape == (2, 3, 4, 4)
    torch.testing.assert_close(view[..., :3, :], extr)
    torch.testing.assert_close(view[..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(2, 3, 4))


def _random_rotation(n):
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3))
    return q * torch.sign(torch.linalg.det(q))[:, None, None]


def test_prope_scores_invariant_to_world_frame():
    # PRoPE's point: attention depends only on relative camera poses, so moving the world frame
    # (right-multiplying every view matrix by the same rigid transform) changes nothing when all
    # tokens are camera tokens. (Non-spatial tokens such as Spa3R's latents live in the world
    # frame, so they are deliberately not invariant.)
    torch.manual_seed(0)
    attn = PRoPEAttention(16, 2).eval()
    x = torch.randn(1, 12, 16)
    spatial = None
    view = extrinsics_to_viewmats(torch.cat([_random_rotation(2), torch.randn(2, 3, 1)], -1))
    intr = torch.tensor([[20.0, 0, 14], [0, 22.0, 7], [0, 0, 1]]).expand(1, 2, 3, 3)
    shift = extrinsics_to_viewmats(torch.cat([_random_rotation(1), torch.randn(1, 3, 1)], -1))

    def run(v):
        prope = PRoPETransforms.from_cameras(v[None], intr, (2, 3), (14, 28), 8, 100.0, spatial)
        return attn(x, prope=prope)

    torch.testing.assert_close(run(view), run(view @ shift[0]), rtol=1e-4, atol=1e-4)
    # ... but a relative change between the cameras does change it.
    moved = view.clone()
    moved[1, :3, 3] += 1.0
    assert (run(view) - run(moved)).abs().max() > 1e-3


def test_prope_rejects_bad_inputs():
    with pytest.raises(ValueError, match='head_dim % 8'):
        PRoPEAttention(12, 1)
    view = torch.eye(4).expand(1, 1, 4, 4)
    with pytest.raises(ValueError, match='marks 3 tokens'):
        PRoPETransforms.from_cameras(
            view, None, (2, 2), (28, 28), 8, spatial_mask=torch.tensor([True, True, True])
        )


@pytest.mark.parametrize(
    ('views', 'ratio', 'context'),
    [(3, 0.5, 1), (4, 0.5, 2), (5, 0.5, 2), (12, 0.5, 6), (4, 0.9, 1)],
)
def test_view_mask_rule(views, ratio, context):
    assert num_context_views(views, ratio) == context
    gen = torch.Generator().manual_seed(3)
    mask = random_view_mask(64, views, ratio, generator=gen)
    assert mask.dtype == torch.bool and mask.shape == (64, views)
    assert not mask[:, 0].any()
    assert ((~mask).sum(dim=1) == context).all()
    check_view_mask(mask, 64, views)
    if 1 < context < views:
        # Different scenes get different masks.
        assert len({tuple(row.tolist()) for row in mask}) > 1


def test_view_mask_reproduces_reference_draw(golden_dir):
    # The rule draws its noise exactly like the reference, so the golden seed gives its mask.
    folder = golden_dir / 'spa3r_tiny'
    seed = int(load_file(folder / 'loss_inputs.safetensors')['seed'])
    ref = load_file(folder / 'loss_outputs.safetensors')['view_mask']
    torch.manual_seed(seed)
    assert torch.equal(random_view_mask(*ref.shape, 0.5), ref)


def test_check_view_mask_errors():
    with pytest.raises(ValueError, match='view 0'):
        check_view_mask(torch.tensor([[True, False]]), 1, 2)
    with pytest.raises(ValueError, match='same number of context views'):
        check_view_mask(torch.tensor([[False, True, True], [False, False, True]]), 2, 3)
    with pytest.raises(ValueError, match='bool'):
        check_view_mask(torch.zeros(1, 2), 1, 2)


def test_select_views_keeps_order():
    x = torch.arange(8).reshape(2, 4)
    keep = torch.tensor([[True, False, True, False], [True, True, False, False]])
    assert select_views(x, keep).tolist() == [[0, 2], [4, 5]]


@pytest.mark.parametrize(('mode', 'asymmetric'), [('asym', True), ('sym', False)])
def test_loss_matches_golden(tiny, mode, asymmetric):
    model, folder = tiny
    model = spa3r_case.build_model(folder, asymmetric_masking=asymmetric)
    inputs = load_file(folder / 'loss_inputs.safetensors')
    ref = load_file(folder / 'loss_outputs.safetensors')
    batch = {K.BATCH_IMAGES: inputs['images'], K.BATCH_SEM_TARGETS: inputs['sem_targets']}
    out = model.forward_loss(batch, view_mask=ref['view_mask'])
    assert torch.equal(out.view_mask, ref['view_mask'])
    for name in K.LOSS_TERMS:
        got = out.losses[name].detach()
        want = ref[f'{mode}.loss.{name.replace("/", "_")}']
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(
        out.losses[K.LOSS_TOTAL].detach(),
        sum(out.losses[n].detach() for n in K.LOSS_TERMS),
    )
    checks = {
        'pose_enc': (out.pose_enc, ATOL),
        'latents': (out.latents.detach(), ATOL),
        'depth_gt': (out.depth_gt, 1e-3),
        'decoder_output_full': (out.decoded[K.DECODER_OUTPUT_FULL].detach(), ATOL),
    }
    for name, (got, atol) in checks.items():
        torch.testing.assert_close(got, ref[f'{mode}.{name}'], rtol=RTOL, atol=atol, msg=name)
    runs = (
        {'masked': 'asym.aggregator_masked_last'}
        if asymmetric
        else {
            'context': 'sym.aggregator_context_last',
            'full': 'sym.aggregator_full_last',
        }
    )
    assert set(out.aggregator_last) == set(runs)
    for key, ref_key in runs.items():
        torch.testing.assert_close(out.aggregator_last[key], ref[ref_key], rtol=RTOL, atol=ATOL)


def test_loss_gradients_reach_only_trainable_modules(tiny):
    model, folder = tiny
    model = spa3r_case.build_model(folder, asymmetric_masking=False).train()
    inputs = load_file(folder / 'loss_inputs.safetensors')
    batch = {K.BATCH_IMAGES: inputs['images'], K.BATCH_SEM_TARGETS: inputs['sem_targets']}
    torch.manual_seed(int(inputs['seed']))
    losses = model.loss(batch)
    assert set(losses) == {*K.LOSS_TERMS, K.LOSS_TOTAL}
    losses[K.LOSS_TOTAL].backward()
    for name, param in model.named_parameters():
        if name.startswith(FROZEN_VGGT_PREFIXES):
            assert param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    # The depth probe reads detached decoder tokens: its loss alone trains only the probe.
    model.zero_grad(set_to_none=True)
    model.loss(batch)[K.LOSS_DEPTH_PROB].backward()
    assert model.decoder.norm.weight.grad is None
    assert model.depth_prob.fc1.weight.grad is not None


def test_loss_rejects_bad_batch(tiny):
    model, _ = tiny
    images = torch.rand(1, 3, 3, 56, 98)
    with pytest.raises(ValueError, match='sem_targets'):
        model.loss({K.BATCH_IMAGES: images, K.BATCH_SEM_TARGETS: torch.zeros(1, 3, 27, 40)})
    good = {K.BATCH_IMAGES: images, K.BATCH_SEM_TARGETS: torch.zeros(1, 3, 28, 40)}
    with pytest.raises(ValueError, match='view 0'):
        model.loss(good, view_mask=torch.tensor([[True, False, True]]))

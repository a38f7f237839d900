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

"""Make the DINOv3 golden case: a tiny random ViT-L/16-kind model run by the reference code.

Usage::

    PYTHONPATH=REFERENCE_DIR .venv/bin/python scripts/make_dinov3_golden.py REFERENCE_DIR \
        [--commit SHA] [--out DIR]

``REFERENCE_DIR`` is a checkout (or an exported tree) of facebookresearch/dinov3, put on the
import path by the caller (``PYTHONPATH``; the script checks that the ``dinov3`` it imports is the
one in ``REFERENCE_DIR``); its ``dinov3.models.vision_transformer.DinoVisionTransformer`` is
imported as it is (nothing stubbed).
The commit is read with ``git rev-parse HEAD`` when the folder is a git work tree, otherwise it
must be given with ``--commit``. Nothing of spa3r_ros is imported: the case records what the
reference computes, independently of the mapping it checks.

The model has the ViT-L/16 kind (``dinov3_vitl16``'s arguments: patch 16, 4 storage tokens,
``mask_k_bias``, RoPE base 100 with ``rescale_coords=2`` and fp32 periods, LayerScale,
``layernormbf16``, GELU MLP) at width 32, 2 blocks, 2 heads. Weights are drawn from a fixed seed
so that every part matters (LayerScale in [0.05, 0.5], non-zero biases including the masked key
bias, non-zero tokens), rounded to float16 and stored as float16; the reference runs on exactly
those values in float32. Written to ``--out`` (default ``test/models/golden/dinov3_tiny``):

* ``config.json``: the constructor arguments, the dinov3 commit, versions, seeds;
* ``weights.safetensors``: the reference's ``state_dict()`` (float16; ``bias_mask`` and
  ``rope_embed.periods`` as the model holds them);
* ``inputs.safetensors``: ``pixel_values`` [2, 3, 64, 48] (normalised images; not square, so
  the height/width order of the RoPE coordinates matters);
* ``outputs.safetensors``: ``x_norm_patchtokens`` [2, 12, 32], ``x_norm_clstoken`` [2, 32],
  ``x_storage_tokens`` [2, 4, 32] in eval mode, and ``train_x_norm_patchtokens``: the same
  forward in training mode (RoPE coordinate rescaling on) right after
  ``torch.manual_seed(train_seed)``.
"""

import argparse
import json
from pathlib import Path
import subprocess
import sys

import torch

WEIGHTS_SEED = 3000
INPUTS_SEED = 3001
TRAIN_SEED = 3002
MODEL_KWARGS = {
    'img_size': 224,
    'patch_size': 16,
    'in_chans': 3,
    'pos_embed_rope_base': 100.0,
    'pos_embed_rope_normalize_coords': 'separate',
    'pos_embed_rope_rescale_coords': 2.0,
    'pos_embed_rope_dtype': 'fp32',
    'embed_dim': 32,
    'depth': 2,
    'num_heads': 2,
    'ffn_ratio': 4.0,
    'qkv_bias': True,
    'drop_path_rate': 0.0,
    'layerscale_init': 1.0e-05,
    'norm_layer': 'layernormbf16',
    'ffn_layer': 'mlp',
    'ffn_bias': True,
    'proj_bias': True,
    'n_storage_tokens': 4,
    'mask_k_bias': True,
    'untie_global_and_local_cls_norm': False,
}
INPUT_SHAPE = (2, 3, 64, 48)


def reference_commit(reference: Path, given: str | None) -> str:
    """The dinov3 commit: ``--commit`` or ``git rev-parse HEAD`` of the checkout."""
    if given:
        return given
    try:
        out = subprocess.run(
            ['git', '-C', str(reference), 'rev-parse', 'HEAD'],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(f'{reference} is not a git work tree; pass --commit ({err})') from err
    return out.stdout.strip()


@torch.no_grad()
def randomize(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Weights that keep activations near 1 and make every branch matter, rounded to float16."""
    for name, param in model.named_parameters():
        if name.endswith('gamma'):
            value = torch.rand(param.shape, generator=generator) * 0.45 + 0.05
        elif 'norm' in name and name.endswith('weight'):
            value = 1 + 0.1 * torch.randn(param.shape, generator=generator)
        elif name.endswith('bias'):
            # Includes the key third of qkv.bias, which the reference masks out.
            value = 0.1 * torch.randn(param.shape, generator=generator)
        elif name in ('cls_token', 'storage_tokens', 'mask_token'):
            value = 0.5 * torch.randn(param.shape, generator=generator)
        else:
            fan_in = param[0].numel()
            value = torch.randn(param.shape, generator=generator) / fan_in**0.5
        param.copy_(value.half().float())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('reference', type=Path, help='facebookresearch/dinov3 checkout')
    parser.add_argument('--commit', help='the checkout commit (when it is not a git work tree)')
    parser.add_argument(
        '--out',
        type=Path,
        default=Path(__file__).resolve().parents[1] / 'test/models/golden/dinov3_tiny',
    )
    args = parser.parse_args(argv)
    reference = args.reference.resolve()
    commit = reference_commit(reference, args.commit)
    try:
        import dinov3
        from dinov3.models.vision_transformer import DinoVisionTransformer
    except ImportError as err:
        parser.error(f'cannot import dinov3 ({err}): run with PYTHONPATH={reference}')
    if reference not in Path(dinov3.__file__).resolve().parents:
        parser.error(f'the dinov3 on the import path is {dinov3.__file__}, not in {reference}')
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.manual_seed(WEIGHTS_SEED)
    model = DinoVisionTransformer(**MODEL_KWARGS)
    model.init_weights()  # sets bias_mask (1 on q and v, 0 on k) and the RoPE periods
    randomize(model, torch.Generator().manual_seed(WEIGHTS_SEED))
    pixel_values = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUTS_SEED))

    with torch.no_grad():
        model.eval()
        out = model(pixel_values, is_training=True)
        model.train()
        torch.manual_seed(TRAIN_SEED)
        train_out = model(pixel_values, is_training=True)

    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(
        {
            k: v.half() if v.is_floating_point() and 'periods' not in k else v
            for k, v in state.items()
        },
        args.out / 'weights.safetensors',
    )
    save_file({'pixel_values': pixel_values}, args.out / 'inputs.safetensors')
    outputs = {
        'x_norm_patchtokens': out['x_norm_patchtokens'],
        'x_norm_clstoken': out['x_norm_clstoken'],
        'x_storage_tokens': out['x_storage_tokens'],
        'train_x_norm_patchtokens': train_out['x_norm_patchtokens'],
    }
    save_file({k: v.contiguous() for k, v in outputs.items()}, args.out / 'outputs.safetensors')
    config = {
        'description': (
            'Tiny DINOv3 ViT of the dinov3_vitl16 kind, run by the reference '
            'DinoVisionTransformer; made by scripts/make_dinov3_golden.py.'
        ),
        'reference_repository': 'facebookresearch/dinov3',
        'reference_commit': commit,
        'model_class': 'dinov3.models.vision_transformer.DinoVisionTransformer',
        'model_kwargs': MODEL_KWARGS,
        'weights_seed': WEIGHTS_SEED,
        'inputs_seed': INPUTS_SEED,
        'train_seed': TRAIN_SEED,
        'weights_dtype_on_disk': 'float16 (upcast to float32 before running); '
        'rope_embed.periods float32',
        'forward': 'model(pixel_values, is_training=True); eval mode for x_*, training mode '
        'right after torch.manual_seed(train_seed) for train_x_norm_patchtokens',
        'torch': torch.__version__,
        'device': 'cpu',
        'dtype': 'float32',
    }
    (args.out / 'config.json').write_text(json.dumps(config, indent=2) + '\n')
    sizes = sum(f.stat().st_size for f in args.out.iterdir())
    print(f'wrote {args.out} ({sizes} bytes) from dinov3 {commit}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

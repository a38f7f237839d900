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

"""AdamW parameter groups and the cosine-with-warm-up learning-rate schedule.

Only trainable parameters enter the optimiser. Weight decay applies to matrices and higher-rank
tensors; biases, norm weights and other 1-D tensors get none (nanoGPT's rule, which the VLM step
also needs for its adaptor and LoRA weights).
"""

from collections.abc import Iterable
import math

import torch
from torch import nn

from spa3r_ros.configs.train import OptimConfig


def param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict]:
    """Split trainable parameters into a decayed and an undecayed AdamW group.

    Args:
        named_params: (name, parameter) pairs; those without requires_grad are left out.
        weight_decay: decay of the first group.

    Returns:
        [{'params', 'weight_decay', 'names'}, ...] (empty groups dropped); names lists
        the parameter names for logs and tests.
    """
    decay, no_decay = [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append((name, p))
    groups = []
    for members, wd in ((decay, weight_decay), (no_decay, 0.0)):
        if members:
            groups.append(
                {
                    'params': [p for _, p in members],
                    'weight_decay': wd,
                    'names': [n for n, _ in members],
                }
            )
    if not groups:
        raise ValueError('no trainable parameters: nothing to optimise')
    return groups


def build_optimizer(
    named_params: Iterable[tuple[str, nn.Parameter]], config: OptimConfig
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` with the config's betas and epsilon."""
    return torch.optim.AdamW(
        param_groups(named_params, config.weight_decay),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
    )


def lr_at(step: int, config: OptimConfig, max_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based).

    Linear warm-up to ``lr`` over ``warmup_steps`` (step 0 gets ``lr / warmup_steps``), then a
    cosine from ``lr`` down to ``min_lr`` at ``max_steps``.
    """
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(max_steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / span, 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-optimiser-step scheduler following :func:`lr_at` (every group scales alike)."""
    peak = config.lr if config.lr > 0 else 1.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_at(step, config, max_steps) / peak
    )

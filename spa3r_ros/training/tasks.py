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

"""The task object: what one training objective tells the shared trainer.

The trainer (:mod:`spa3r_ros.training.trainer`) owns the loop, optimiser, precision, distribution,
checkpoints and logs; a :class:`TrainTask` owns the model and the objective: which modules train,
which stay frozen (in eval mode, outside the optimiser), how a data batch becomes the inputs of
``module.forward``, and how the trained weights are exported. PSFM (:mod:`.psfm`) is one task;
Spa3-VLM fine-tuning is the next one, on the same loop.

Contract of ``module.forward(**inputs)``: a dict of scalar tensors, one per loss term, with the
optimised total under ``'loss'``; every trainable parameter takes part in that loss (DDP runs
without ``find_unused_parameters``).
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

LOSS_KEY = 'loss'


class TrainTask:
    """Base class of training objectives (override the methods marked so).

    Attributes:
        name: short name for logs (``psfm``, ``vlm``).
        module: the ``nn.Module`` the trainer wraps (DDP/FSDP/compile) and calls.
    """

    name = 'task'
    module: nn.Module

    # ------------------------------------------------------------------ parameters

    def frozen_modules(self) -> list[nn.Module]:
        """Sub-modules kept frozen and in eval mode (override)."""
        return []

    def freeze(self) -> None:
        """Switch off gradients of the frozen modules (called once by the trainer)."""
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def named_trainable_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of everything the optimiser updates."""
        for name, param in self.module.named_parameters():
            if param.requires_grad:
                yield name, param

    def set_train_mode(self, training: bool) -> None:
        """Train or eval mode; frozen modules stay in eval mode either way."""
        self.module.train(training)
        for module in self.frozen_modules():
            module.eval()

    def checkpoint_blocks(self) -> list[nn.Module]:
        """Blocks recomputed in backward when activation checkpointing is on (override)."""
        return []

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained part of ``module``'s state (what a checkpoint stores)."""
        names = {name for name, _ in self.named_trainable_parameters()}
        return {k: v.detach().clone() for k, v in self.module.state_dict().items() if k in names}

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load :meth:`trainable_state_dict` output, every key checked.

        Raises:
            ValueError: on missing or unexpected keys.
        """
        names = {name for name, _ in self.named_trainable_parameters()}
        missing = sorted(names - set(state))
        unexpected = sorted(set(state) - names)
        if missing or unexpected:
            raise ValueError(
                f'checkpoint does not fit the {self.name} task: missing {missing[:8]}, '
                f'unexpected {unexpected[:8]}'
            )
        result = self.module.load_state_dict(dict(state), strict=False)
        if result.unexpected_keys:
            raise ValueError(f'unexpected keys {result.unexpected_keys[:8]}')

    # ------------------------------------------------------------------ data

    def prepare(
        self, batch: Mapping[str, Any], *, step: int, rank: int, heldout: bool = False
    ) -> dict[str, Any]:
        """Turn a data batch into ``module.forward`` keyword arguments on the task's device.

        Args:
            batch: one batch of the task's data.
            step: optimiser step (seeds per-step randomness that must not depend on the rank).
            rank: this process's rank.
            heldout: True for held-out evaluation (fixed, comparable inputs).
        """
        raise NotImplementedError

    def batch_size(self, batch: Mapping[str, Any]) -> int:
        """Number of samples (clips, questions) in a batch, for throughput."""
        raise NotImplementedError

    # ------------------------------------------------------------------ held-out extras

    def evaluate_extra(self, step: int) -> dict[str, float]:
        """Task-specific held-out metrics beside the held-out loss (override; default none).

        Called by the trainer on rank 0 alone, before training, at every ``run.eval_every`` and
        at the end (the other ranks wait), so it must not use collectives. The values are
        logged to TensorBoard under their own names (``eval/strict`` ...) and reported before
        and after in the run summary. Restore any RNG it uses (resume stays bitwise).
        """
        return {}

    # ------------------------------------------------------------------ output

    def export(
        self, folder: str | Path, module_state: Mapping[str, torch.Tensor] | None = None
    ) -> Path:
        """Write the inference model to ``folder`` (override).

        Args:
            folder: the export folder.
            module_state: the full ``module`` state when the live module is sharded (FSDP);
                None reads the module itself.
        """
        raise NotImplementedError


def enable_activation_checkpointing(blocks: list[nn.Module]) -> None:
    """Recompute each block's forward in backward (non-reentrant; numerically identical).

    The block's ``forward`` is wrapped in place, so parameter names and state-dict keys do not
    change (checkpoints stay loadable either way).
    """
    for block in blocks:
        if getattr(block, '_spa3r_checkpointed', False):
            continue
        forward = block.forward

        def wrapped(*args, _forward=forward, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_forward, *args, use_reentrant=False, **kwargs)
            return _forward(*args, **kwargs)

        block.forward = wrapped
        block._spa3r_checkpointed = True

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

"""The shared training loop: one process or many under ``torchrun``, resumable bit for bit.

A :class:`Trainer` runs a :class:`~spa3r_ros.training.tasks.TrainTask` (PSFM now, Spa3-VLM
fine-tuning next) with AdamW (decay on matrices only), a cosine schedule after warm-up, gradient
accumulation and clipping, bf16 autocast on CUDA (fp32 on CPU), optional activation checkpointing
and ``torch.compile``, DDP (gloo on CPU, NCCL on CUDA) or FSDP. Rank 0 alone writes checkpoints,
logs and the progress bar; metrics are all-reduced.

Data contract (``train_data``): an iterable of batches with ``set_epoch(epoch)`` and
``load_state_dict({'epoch', 'batch'})`` (start that epoch after skipping ``batch`` batches); the
trainer counts the batches it consumed and stores that position in every checkpoint, so data
loader workers need not report back. ``make_iter(dataset)`` (default ``iter``) builds the
iterator of one epoch, e.g. a ``DataLoader``. Every rank must get the same number of batches per
epoch (the data pipeline shards clips evenly).

Held-out data (optional): an iterable of batches of this rank's shard, read once at the start and
kept in memory with fixed view masks and targets, so every evaluation computes the same quantity;
the loss is the clip-weighted mean over all ranks. A task may add metrics of its own at the same
points (:meth:`~spa3r_ros.training.tasks.TrainTask.evaluate_extra`, run on rank 0: the VLM task's
``spa3r eval`` scores); they are logged under their names and reported before/after.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
import logging
import math
import os
from pathlib import Path
import random
import time
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.distributed as dist
from tqdm import tqdm

from spa3r_ros.configs.serialize import config_to_dict
from spa3r_ros.configs.train import train_config_to_yaml, TrainConfig
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.training import checkpointing as ckpt
from spa3r_ros.training.distributed import all_reduce_sum, barrier, DistInfo
from spa3r_ros.training.logging import format_metrics, RunLogger
from spa3r_ros.training.optim import build_optimizer, build_scheduler
from spa3r_ros.training.tasks import enable_activation_checkpointing, LOSS_KEY, TrainTask

logger = logging.getLogger(__name__)

EXPORT_DIR = 'export'


@dataclass
class TrainSummary:
    """What a finished run reports.

    Attributes:
        steps: optimiser steps done in total.
        heldout_before: held-out loss before any training (None without held-out data).
        heldout_after: held-out loss at the end.
        heldout_history: ``(step, loss)`` of every evaluation.
        last_losses: the last logged training losses (all-reduced means).
        clips_per_s: mean training throughput of this session (all ranks).
        checkpoint: the last checkpoint folder (rank 0), or None.
        export_dir: the export folder (rank 0, when exported), or None.
        extra_history: ``(step, metrics)`` of every :meth:`TrainTask.evaluate_extra` (rank 0).
    """

    steps: int
    heldout_before: float | None = None
    heldout_after: float | None = None
    heldout_history: list[tuple[int, float]] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    clips_per_s: float = 0.0
    checkpoint: Path | None = None
    export_dir: Path | None = None
    extra_history: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def text(self) -> str:
        """A few lines for people (printed at the end of ``spa3r train``)."""
        lines = [f'steps: {self.steps}']
        if self.heldout_before is not None:
            change = self.heldout_after - self.heldout_before
            lines.append(
                f'held-out loss: before {self.heldout_before:.4f}  after '
                f'{self.heldout_after:.4f}  ({change:+.4f})'
            )
        if self.extra_history:
            first, last = self.extra_history[0], self.extra_history[-1]
            # Top-level names only (eval/strict); finer ones (eval/strict/<category>) are in
            # TensorBoard and the checkpoints.
            shown_names = sorted(n for n in last[1] if n.count('/') <= 1)
            for name in shown_names:
                before = first[1].get(name)
                shown = '-' if before is None else f'{before:.4f}'
                lines.append(
                    f'held-out {name}: before {shown} (step {first[0]})  after '
                    f'{last[1][name]:.4f} (step {last[0]})'
                )
            if len(shown_names) < len(last[1]):
                lines.append(
                    f'({len(last[1]) - len(shown_names)} finer held-out metrics: see TensorBoard)'
                )
        if self.last_losses:
            lines.append(f'last training losses: {format_metrics(self.last_losses)}')
        lines.append(f'throughput: {self.clips_per_s:.2f} clips/s')
        if self.checkpoint is not None:
            lines.append(f'checkpoint: {self.checkpoint}')
        if self.export_dir is not None:
            lines.append(f'export: {self.export_dir}')
        return '\n'.join(lines)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``compute.precision`` on ``device`` (None: fp32, no autocast).

    Raises:
        ConfigError: fp16 off CUDA.
    """
    if precision == 'auto':
        return torch.bfloat16 if device.type == 'cuda' else None
    if precision == 'fp32':
        return None
    if precision == 'fp16' and device.type != 'cuda':
        raise ConfigError('compute.precision fp16 needs CUDA (use fp32 or bf16 on the CPU)')
    return torch.bfloat16 if precision == 'bf16' else torch.float16


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Runs one task to ``config.run.max_steps`` (see the module docstring).

    Args:
        task: the objective and its model.
        config: the resolved run config.
        run_dir: the run folder (checkpoints, logs, export).
        train_data: training batches (the data contract in the module docstring).
        heldout_data: held-out batches of this rank, or None.
        dist_info: this process's rank and device (default: one CPU process).
        make_iter: builds one epoch's iterator from ``train_data``.
        export: write ``RUN/export`` at the end (rank 0).
    """

    def __init__(
        self,
        task: TrainTask,
        config: TrainConfig,
        run_dir: str | os.PathLike,
        train_data: Any,
        heldout_data: Iterable[Mapping[str, Any]] | None = None,
        dist_info: DistInfo | None = None,
        make_iter: Callable[[Any], Iterable] = iter,
        export: bool = True,
    ) -> None:
        self.task = task
        self.config = config
        self.run_dir = Path(run_dir)
        self.train_data = train_data
        self.heldout_data = heldout_data
        self.info = dist_info or DistInfo()
        self.make_iter = make_iter
        self.export = export
        self.config_yaml = train_config_to_yaml(config)
        self.autocast_dtype = resolve_precision(config.compute.precision, self.info.device)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.heldout_history: list[tuple[int, float]] = []
        self.heldout_before: float | None = None
        self.best: float | None = None
        self.extra_history: list[tuple[int, dict[str, float]]] = []
        self.log = RunLogger(self.run_dir, enabled=self.info.is_main)
        self._heldout_inputs: list[tuple[dict[str, Any], int]] | None = None

    # ------------------------------------------------------------------ set-up

    def _setup_model(self) -> None:
        task, config, info = self.task, self.config, self.info
        task.module.to(info.device)
        task.set_train_mode(True)
        if config.compute.activation_checkpointing:
            enable_activation_checkpointing(task.checkpoint_blocks())
        wrapped: nn.Module = task.module
        if self._fsdp:
            from torch.distributed.fsdp import fully_shard

            # Parameters become DTensor shards in place (names unchanged); frozen ones too.
            wrapped = fully_shard(task.module)
        elif info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [info.device] if info.device.type == 'cuda' else None
            wrapped = DistributedDataParallel(task.module, device_ids=device_ids)
        self.wrapped = wrapped
        # After wrapping: FSDP replaces the parameters by sharded ones.
        self.trainable = [p for _, p in task.named_trainable_parameters()]
        self.forward_module = torch.compile(wrapped) if config.compute.compile else wrapped
        self.optimizer = build_optimizer(task.named_trainable_parameters(), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.run.max_steps)
        use_scaler = self.autocast_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=use_scaler)

    @property
    def _fsdp(self) -> bool:
        return self.info.distributed and self.config.distributed.strategy == 'fsdp'

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.info.device.type, dtype=self.autocast_dtype)

    # ------------------------------------------------------------------ data

    def _batches(self) -> Iterator[Mapping[str, Any]]:
        while True:
            if hasattr(self.train_data, 'set_epoch'):
                self.train_data.set_epoch(self.epoch)
            if hasattr(self.train_data, 'load_state_dict'):
                self.train_data.load_state_dict(
                    {'epoch': self.epoch, 'batch': self.batch_in_epoch}
                )
            started_at = self.batch_in_epoch
            got = False
            for batch in self.make_iter(self.train_data):
                got = True
                self.batch_in_epoch += 1
                yield batch
            # A checkpoint taken right after an epoch's last batch resumes at its end: nothing
            # is left to read there, which is no error.
            if not got and started_at == 0:
                raise RuntimeError(
                    f'the training data gave no batch in epoch {self.epoch} '
                    f'(rank {self.info.rank})'
                )
            self.epoch += 1
            self.batch_in_epoch = 0

    # ------------------------------------------------------------------ held-out

    def _prepare_heldout(self) -> None:
        if self.heldout_data is None:
            return
        limit = self.config.run.heldout_batches
        inputs = []
        for i, batch in enumerate(self.heldout_data):
            if limit and i >= limit:
                break
            inputs.append(
                (
                    self.task.prepare(batch, step=0, rank=self.info.rank, heldout=True),
                    self.task.batch_size(batch),
                )
            )
        self._heldout_inputs = inputs
        total = all_reduce_sum(torch.tensor([float(len(inputs))]), self.info)
        if total.item() == 0:
            raise ValueError('the held-out data gave no batch')

    def evaluate(self) -> float | None:
        """Clip-weighted mean held-out loss over all ranks (None without held-out data)."""
        if self._heldout_inputs is None:
            return None
        self.task.set_train_mode(False)
        sums = torch.zeros(2, dtype=torch.float64)
        with torch.no_grad(), self._autocast():
            for inputs, count in self._heldout_inputs:
                losses = self.wrapped(**inputs)
                sums[0] += float(losses[LOSS_KEY]) * count
                sums[1] += count
        self.task.set_train_mode(True)
        total = all_reduce_sum(sums, self.info)
        return float(total[0] / total[1])

    def _evaluate_extra(self) -> None:
        """The task's own held-out metrics (rank 0 computes; every rank must call)."""
        if self._fsdp:
            # Sharded weights cannot run on one rank alone.
            return
        if self.info.is_main:
            metrics = self.task.evaluate_extra(self.step)
            if metrics:
                self.extra_history.append((self.step, dict(metrics)))
                self.log.scalars(self.step, metrics)
                self.log.line(f'step {self.step}: held-out {format_metrics(metrics)}')
        barrier(self.info)

    def _record_eval(self, loss: float | None, candidate: bool = True) -> bool:
        """Log an evaluation; True when it is the best checkpoint candidate so far."""
        if loss is None:
            return False
        self.heldout_history.append((self.step, loss))
        self.log.scalars(self.step, {'heldout/loss': loss})
        self.log.line(f'step {self.step}: held-out loss {loss:.6f}')
        if candidate and (self.best is None or loss < self.best):
            self.best = loss
            return True
        return False

    # ------------------------------------------------------------------ checkpoints

    def _gather_rng(self) -> list[dict[str, Any]]:
        state = ckpt.capture_rng_state()
        if not self.info.distributed:
            return [state]
        gathered: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def _model_and_optim_state(self) -> tuple[dict, dict]:
        if self._fsdp:
            from torch.distributed.checkpoint.state_dict import (
                get_state_dict,
                StateDictOptions,
            )

            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            model_state, optim_state = get_state_dict(
                self.task.module, self.optimizer, options=options
            )
            own = set(self.task.trainable_state_dict())
            return {k: v for k, v in model_state.items() if k in own}, optim_state
        return self.task.trainable_state_dict(), self.optimizer.state_dict()

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; every rank must call)."""
        rng = self._gather_rng()
        model_state, optim_state = self._model_and_optim_state()
        folder = None
        if self.info.is_main:
            state = {
                'task': self.task.name,
                'model': {k: v.detach().cpu() for k, v in model_state.items()},
                'optimizer': optim_state,
                'scheduler': self.scheduler.state_dict(),
                'scaler': self.scaler.state_dict(),
                'rng': rng,
                'data': {'epoch': self.epoch, 'batch': self.batch_in_epoch},
                'world_size': self.info.world_size,
                'config': config_to_dict(self.config),
                'heldout': {
                    'before': self.heldout_before,
                    'history': self.heldout_history,
                    'best': self.best,
                    'extra': self.extra_history,
                },
            }
            folder = ckpt.save_checkpoint(self.run_dir, self.step, state, self.config_yaml)
            self.log.line(f'step {self.step}: saved {folder}')
        barrier(self.info)
        return folder

    def _load(self, folder: Path) -> None:
        state = ckpt.load_checkpoint(folder)
        if state.get('task') != self.task.name:
            raise ValueError(
                f'{folder} is a {state.get("task")!r} checkpoint, not {self.task.name}'
            )
        if self._fsdp:
            from torch.distributed.checkpoint.state_dict import (
                set_state_dict,
                StateDictOptions,
            )

            set_state_dict(
                self.task.module,
                self.optimizer,
                model_state_dict=state['model'],
                optim_state_dict=state['optimizer'],
                options=StateDictOptions(full_state_dict=True, strict=False),
            )
        else:
            self.task.load_trainable_state_dict(
                {k: v.to(self.info.device) for k, v in state['model'].items()}
            )
            self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.scaler.load_state_dict(state['scaler'])
        self.step = int(state['step'])
        self.epoch = int(state['data']['epoch'])
        self.batch_in_epoch = int(state['data']['batch'])
        held = state.get('heldout') or {}
        self.heldout_before = held.get('before')
        self.heldout_history = [tuple(x) for x in held.get('history', [])]
        self.best = held.get('best')
        self.extra_history = [(int(s), dict(m)) for s, m in held.get('extra', [])]
        rng = state['rng']
        if len(rng) == self.info.world_size:
            ckpt.restore_rng_state(rng[self.info.rank])
        else:
            logger.warning(
                'checkpoint from %d rank(s) resumed on %d: RNG streams are reseeded',
                len(rng),
                self.info.world_size,
            )
            seed_everything(self.config.run.seed + 7919 * self.info.rank + self.step)
        self.log.line(f'resumed from {folder} at step {self.step}')

    # ------------------------------------------------------------------ loop

    def _train_step(self, batches: Iterator[Mapping[str, Any]]) -> tuple[dict[str, float], int]:
        accum = self.config.optim.grad_accum
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        clips = 0
        for micro in range(accum):
            batch = next(batches)
            clips += self.task.batch_size(batch)
            inputs = self.task.prepare(batch, step=self.step, rank=self.info.rank)
            sync = micro == accum - 1
            with _no_sync(self.wrapped, sync), self._autocast():
                losses = self.forward_module(**inputs)
                loss = losses[LOSS_KEY] / accum
            self.scaler.scale(loss).backward()
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + float(value.detach()) / accum
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.grad_clip)
            if hasattr(norm, 'full_tensor'):  # FSDP: a DTensor of the global norm
                norm = norm.full_tensor()
            totals['grad_norm'] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return totals, clips

    def fit(self, resume: bool = False, stop_after: int | None = None) -> TrainSummary:
        """Train to ``run.max_steps`` and return the summary.

        Args:
            resume: continue from the newest checkpoint in ``RUN/checkpoints``.
            stop_after: end this session after that many steps (checkpoint written, no export),
                as an interruption would; the schedule still spans ``run.max_steps``.

        Raises:
            FileNotFoundError: ``resume`` without a checkpoint.
        """
        run = self.config.run
        seed_everything(run.seed + 7919 * self.info.rank)
        self._setup_model()
        if resume:
            folder = ckpt.latest_checkpoint(self.run_dir)
            if folder is None:
                raise FileNotFoundError(f'no checkpoint to resume in {self.run_dir}')
            self._load(folder)
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / 'config.yaml').write_text(self.config_yaml)
        self._prepare_heldout()
        if self.step == 0:
            self.heldout_before = self.evaluate()
            # The starting model is no checkpoint of this run: it cannot be the best one.
            self._record_eval(self.heldout_before, candidate=False)
            self._evaluate_extra()
        batches = self._batches()
        bar = tqdm(
            total=run.max_steps,
            initial=self.step,
            disable=not self.info.is_main,
            desc=f'train {self.task.name}',
            unit='step',
        )
        last_ckpt = None
        window: dict[str, float] = {}
        window_steps = 0
        window_clips = 0
        window_start = time.perf_counter()
        session_clips, session_time = 0, 0.0
        last_losses: dict[str, float] = {}
        end = run.max_steps if stop_after is None else min(stop_after, run.max_steps)
        try:
            while self.step < end:
                losses, clips = self._train_step(batches)
                for name, value in losses.items():
                    window[name] = window.get(name, 0.0) + value
                window_steps += 1
                window_clips += clips
                bar.update(1)
                done = self.step >= end
                if self.step % run.log_every == 0 or done:
                    elapsed = time.perf_counter() - window_start
                    names = sorted(window)
                    vec = torch.tensor([window[n] / window_steps for n in names] + [window_clips])
                    reduced = all_reduce_sum(vec, self.info)
                    means = {
                        n: float(reduced[i]) / self.info.world_size for i, n in enumerate(names)
                    }
                    all_clips = float(reduced[-1])
                    means['lr'] = self.scheduler.get_last_lr()[0]
                    means['clips_per_s'] = all_clips / max(elapsed, 1e-9)
                    if self.info.device.type == 'cuda':
                        means['gpu_mem_gb'] = (
                            torch.cuda.max_memory_allocated(self.info.device) / 2**30
                        )
                    last_losses = {n: means[n] for n in names}
                    self.log.scalars(self.step, means, prefix='train/')
                    self.log.line(f'step {self.step}/{run.max_steps} {format_metrics(means)}')
                    bar.set_postfix(loss=f'{means.get(LOSS_KEY, math.nan):.4f}')
                    session_clips += all_clips
                    session_time += elapsed
                    window, window_steps, window_clips = {}, 0, 0
                    window_start = time.perf_counter()
                new_best = False
                if (run.eval_every and self.step % run.eval_every == 0) or done:
                    new_best = self._record_eval(self.evaluate())
                    self._evaluate_extra()
                if (run.save_every and self.step % run.save_every == 0) or done or new_best:
                    last_ckpt = self.save()
                    if new_best and self.info.is_main:
                        ckpt.write_best(self.run_dir, self.step, self.best)
                    if self.info.is_main:
                        ckpt.prune_checkpoints(self.run_dir, run.keep_last)
        finally:
            bar.close()
        summary = TrainSummary(
            steps=self.step,
            heldout_before=self.heldout_before,
            heldout_after=self.heldout_history[-1][1] if self.heldout_history else None,
            heldout_history=list(self.heldout_history),
            last_losses=last_losses,
            clips_per_s=session_clips / session_time if session_time else 0.0,
            checkpoint=last_ckpt or ckpt.latest_checkpoint(self.run_dir),
            extra_history=list(self.extra_history),
        )
        if self.export and self.step >= run.max_steps:
            full_state = None
            if self._fsdp:
                # Sharded weights: every rank takes part in gathering them; rank 0 exports.
                from torch.distributed.checkpoint.state_dict import (
                    get_model_state_dict,
                    StateDictOptions,
                )

                full_state = get_model_state_dict(
                    self.task.module,
                    options=StateDictOptions(full_state_dict=True, cpu_offload=True),
                )
            if self.info.is_main:
                summary.export_dir = self.task.export(
                    self.run_dir / EXPORT_DIR, module_state=full_state
                )
        barrier(self.info)
        if self.info.is_main:
            for line in summary.text().splitlines():
                self.log.line(line)
        self.log.close()
        return summary


def _no_sync(module: nn.Module, sync: bool):
    # DDP skips the gradient all-reduce on accumulation micro-steps; FSDP2 and plain modules
    # have no no_sync (FSDP2 reduces every backward, which is correct, only slower).
    if not sync and hasattr(module, 'no_sync'):
        return module.no_sync()
    return nullcontext()

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

"""Configuration of a training run (``spa3r train ...``): the one source of its defaults.

A run reads ``config/train_psfm.yaml`` (or ``--config FILE``), then ``--section.field value``
overrides (:func:`load_train_config`); the resolved config is saved as YAML next to every
checkpoint (:func:`save_train_config`). Optimiser defaults are the reference's Spa3R recipe
(spa3r_spec.md 2.7: AdamW lr 2e-3, weight decay 1e-4, cosine to 2e-4, clip 1.0, 2 accumulation
steps); precision differs on purpose (bf16 autocast instead of fp16 + GradScaler).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import os
from pathlib import Path
from typing import Any

import yaml

from spa3r_ros.configs.clips import ClipDataConfig
from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.flatten import from_flat_dict, iter_leaf_fields
from spa3r_ros.configs.serialize import config_to_dict
from spa3r_ros.configs.vlm_data import VlmDataConfig
from spa3r_ros.core.errors import ConfigError

PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')
BACKENDS = ('auto', 'gloo', 'nccl')
STRATEGIES = ('ddp', 'fsdp')
TEACHERS = ('tiny', 'vitl16')
TARGET_MODES = ('reference', 'deterministic')
TRAINABLE_SETS = ('adaptor', 'lora', 'full')
LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


@dataclass(frozen=True)
class RunConfig:
    """Length, seeding and bookkeeping of a run.

    Args:
        max_steps: optimiser steps of the whole run (a resumed run continues to this count).
        seed: seed of the weights' random parts, view masks and every RNG of the run.
        log_every: steps between log lines / TensorBoard points.
        eval_every: steps between held-out evaluations (0: only before and after).
        save_every: steps between checkpoints (0: only at the end).
        keep_last: checkpoints kept besides the best one.
        heldout_batches: most held-out batches evaluated (0: all the held-out data gives).
        device: ``auto`` (CUDA ``LOCAL_RANK`` when present, else CPU), ``cpu`` or ``cuda``.
    """

    max_steps: int = param(1000, description='Optimiser steps of the run', bounds=(1, None))
    seed: int = param(0, description='Seed of the run', bounds=(0, 2**31 - 1))
    log_every: int = param(10, description='Steps between log lines', bounds=(1, None))
    eval_every: int = param(
        100, description='Steps between held-out evaluations (0: start and end)', bounds=(0, None)
    )
    save_every: int = param(
        100, description='Steps between checkpoints (0: end only)', bounds=(0, None)
    )
    keep_last: int = param(3, description='Checkpoints kept besides the best', bounds=(1, None))
    heldout_batches: int = param(
        16, description='Most held-out batches evaluated (0: all)', bounds=(0, None)
    )
    device: str = param('auto', description='Training device', choices=('auto', 'cpu', 'cuda'))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a cosine schedule after a linear warm-up.

    Args:
        lr: peak learning rate.
        min_lr: learning rate at the end of the cosine.
        warmup_steps: linear warm-up steps from 0 to ``lr`` (the reference has none).
        weight_decay: AdamW decay of matrices (biases, norms and other 1-D tensors get none).
        beta1: AdamW beta 1.
        beta2: AdamW beta 2.
        eps: AdamW epsilon.
        grad_clip: global gradient-norm clip (0: none).
        grad_accum: micro-batches per optimiser step.
    """

    lr: float = param(2e-3, description='Peak learning rate', bounds=(0.0, None))
    min_lr: float = param(
        2e-4, description='Final learning rate of the cosine', bounds=(0.0, None)
    )
    warmup_steps: int = param(0, description='Linear warm-up steps', bounds=(0, None))
    weight_decay: float = param(1e-4, description='AdamW weight decay', bounds=(0.0, None))
    beta1: float = param(0.9, description='AdamW beta 1', bounds=(0.0, 1.0))
    beta2: float = param(0.999, description='AdamW beta 2', bounds=(0.0, 1.0))
    eps: float = param(1e-8, description='AdamW epsilon', bounds=(0.0, None))
    grad_clip: float = param(1.0, description='Gradient-norm clip (0: none)', bounds=(0.0, None))
    grad_accum: int = param(2, description='Micro-batches per optimiser step', bounds=(1, None))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_lr > self.lr:
            raise ConfigError(f'OptimConfig: min_lr {self.min_lr} > lr {self.lr}')


@dataclass(frozen=True)
class ComputeConfig:
    """Numerics and speed switches.

    Args:
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16`` or
            ``fp16`` (autocast + gradient scaler, CUDA only).
        activation_checkpointing: recompute the trainable transformer blocks in backward.
        compile: ``torch.compile`` the training module.
    """

    precision: str = param('auto', description='Autocast precision', choices=PRECISIONS)
    activation_checkpointing: bool = param(
        False, description='Recompute trainable blocks in backward (saves memory)'
    )
    compile: bool = param(False, description='torch.compile the training module')

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class DistributedConfig:
    """How ranks started by ``torchrun`` cooperate (one process needs nothing).

    Args:
        backend: ``auto`` (NCCL on CUDA, gloo on CPU), ``gloo`` or ``nccl``.
        strategy: ``ddp`` (replicated weights) or ``fsdp`` (sharded, for models over one GPU).
    """

    backend: str = param('auto', description='Process-group backend', choices=BACKENDS)
    strategy: str = param('ddp', description='Data-parallel strategy', choices=STRATEGIES)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class PsfmConfig:
    """The PSFM objective (spa3r_spec.md 2.6).

    Args:
        teacher: semantic teacher: ``vitl16`` (DINOv3 ViT-L/16, the reference) or ``tiny``
            (a tiny random DINOv3 for the tiny presets and tests).
        target_mode: ``reference`` (the teacher's RoPE coordinate jitter stays on during
            training, as in the reference, which never puts DINOv3 in eval mode) or
            ``deterministic`` (teacher in eval mode). Held-out targets are always deterministic.
        mask_ratio: fraction of masked (target-only) views; -1 takes the model's own.
        teacher_weights: the ViT-L/16 weights: a DINOv3 hub checkpoint
            (``dinov3_vitl16_pretrain_*.pth``) or a Spa3R Lightning checkpoint with
            ``model.dino.*``; empty leaves it random (a warning: such targets teach nothing).
        heads_seed: seed of the frozen VGGT camera/depth heads when the starting checkpoint has
            none (the tiny presets are inference-only), and of a random teacher.
        image_height: height of the training clips in pixels (a multiple of 14; the width is the
            model's geometry width); 0 takes 3/4 of the width, rounded down to whole patches
            (4:3 cameras). Set it to what inference gives your camera (e.g. 280 for 16:9 at 518)
            so that training crops or pads nothing.
    """

    teacher: str = param('vitl16', description='Semantic teacher', choices=TEACHERS)
    target_mode: str = param('reference', description='Semantic target mode', choices=TARGET_MODES)
    teacher_weights: str = param('', description='DINOv3 ViT-L/16 weights file (vitl16)')
    mask_ratio: float = param(
        -1.0, description="Masked view fraction (-1: the model's)", bounds=(-1.0, 1.0)
    )
    heads_seed: int = param(
        0, description='Seed of pseudo-label heads absent from --init', bounds=(0, 2**31 - 1)
    )

    image_height: int = param(
        0, description='Clip height (0: 3/4 of the geometry width)', bounds=(0, 4096), unit='px'
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.image_height % 14:
            raise ConfigError(
                f'PsfmConfig.image_height {self.image_height} is not a multiple of 14'
            )
        if self.mask_ratio < 0 and self.mask_ratio != -1.0:
            raise ConfigError(f'PsfmConfig.mask_ratio {self.mask_ratio} must be -1 or in [0, 1]')


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (``config/train_psfm.yaml`` holds these defaults)."""

    run: RunConfig = param(default_factory=RunConfig, description='Length and bookkeeping')
    optim: OptimConfig = param(default_factory=OptimConfig, description='Optimiser')
    compute: ComputeConfig = param(default_factory=ComputeConfig, description='Numerics')
    distributed: DistributedConfig = param(
        default_factory=DistributedConfig, description='Multi-process training'
    )
    data: ClipDataConfig = param(default_factory=ClipDataConfig, description='Clip sampling')
    psfm: PsfmConfig = param(default_factory=PsfmConfig, description='PSFM objective')

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class VlmConfig:
    """The Spa3-VLM fine-tuning objective (``spa3r train vlm``; spa3r_spec.md 3.6).

    Args:
        trainable: what trains besides nothing else: ``adaptor`` (the geometry injector),
            ``lora`` (injector + LoRA adapters on the language model) or ``full`` (injector +
            the whole language model, the reference's choice). Vision tower and Spa3R stay frozen.
        lora_rank: LoRA rank (``lora``).
        lora_alpha: LoRA alpha (the adapter's scale is alpha / rank).
        lora_dropout: dropout on the adapters' input.
        lora_targets: the language model's linear layers that get adapters.
        gasp_weight: weight of the GASP correspondence loss (0: off).
        no_geometry: train with the Spa3R branch off (the no-geometry ablation; the injector
            then gets no gradient and stays as it was).
        train_vision: train Qwen's vision tower too (merger included). The reference keeps it
            frozen (pre-trained); a model trained from scratch needs it to learn to see.
        train_geometry_encoder: train the Spa3R encoder too (input projection, latent queries,
            encoder blocks); its VGGT stays frozen. For a from-scratch model whose Spa3R was
            pre-trained by PSFM on little data; ignored with ``no_geometry``.
        tokenizer: a tokenizer folder that replaces the starting bundle's (``spa3r train
            tokenizer``); the token embeddings and LM head are then new and untrained, for a
            language model trained from scratch. '' keeps the bundle's tokenizer.
    """

    trainable: str = param('full', description='Trainable set', choices=TRAINABLE_SETS)
    lora_rank: int = param(16, description='LoRA rank', bounds=(1, None))
    lora_alpha: float = param(32.0, description='LoRA alpha', bounds=(0.0, None))
    lora_dropout: float = param(0.05, description='LoRA dropout', bounds=(0.0, 1.0))
    lora_targets: tuple[str, ...] = param(
        LORA_TARGETS, description='Language-model linear layers with LoRA adapters'
    )
    gasp_weight: float = param(0.0, description='GASP loss weight (0: off)', bounds=(0.0, None))
    no_geometry: bool = param(False, description='Train without the Spa3R branch (ablation)')
    train_vision: bool = param(False, description='Train the vision tower too (from scratch)')
    train_geometry_encoder: bool = param(
        False, description='Train the Spa3R encoder too (VGGT stays frozen)'
    )
    tokenizer: str = param(
        '', description="Tokenizer folder replacing the init's, new embeddings ('' = keep)"
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.lora_targets:
            raise ConfigError('VlmConfig.lora_targets must name at least one layer')
        if self.trainable == 'adaptor' and self.no_geometry:
            raise ConfigError(
                'vlm.trainable adaptor with vlm.no_geometry trains nothing (the adaptor gets no '
                'gradient without geometry): use lora or full'
            )


def _vlm_optim() -> OptimConfig:
    # The reference SFT recipe (spa3r_spec.md 3.6): lr 1e-5, cosine, warm-up 3 % of the steps,
    # weight decay 0.01, clip 1, 8 accumulation steps.
    return OptimConfig(
        lr=1e-5, min_lr=0.0, warmup_steps=30, weight_decay=0.01, grad_clip=1.0, grad_accum=8
    )


@dataclass(frozen=True)
class VlmTrainConfig:
    """A ``spa3r train vlm`` run (``config/train_vlm.yaml`` holds these defaults).

    The trainer reads ``run``, ``optim``, ``compute`` and ``distributed`` as in
    :class:`TrainConfig`; ``data`` is the QA samples' config (:mod:`spa3r_ros.training.vlm_data`),
    ``vlm`` the objective.
    """

    run: RunConfig = param(default_factory=RunConfig, description='Length and bookkeeping')
    optim: OptimConfig = param(default_factory=_vlm_optim, description='Optimiser')
    compute: ComputeConfig = param(default_factory=ComputeConfig, description='Numerics')
    distributed: DistributedConfig = param(
        default_factory=DistributedConfig, description='Multi-process training'
    )
    data: VlmDataConfig = param(default_factory=VlmDataConfig, description='QA samples')
    vlm: VlmConfig = param(default_factory=VlmConfig, description='Spa3-VLM objective')

    def __post_init__(self) -> None:
        check_fields(self)


#: The config class of each ``spa3r train`` objective.
SCHEMAS = {'psfm': TrainConfig, 'vlm': VlmTrainConfig}


def flatten_nested(doc: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """``{'optim': {'lr': 1}}`` -> ``{'optim.lr': 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(flatten_nested(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def _leaf_types(schema: type = TrainConfig) -> dict[str, Any]:
    return {leaf.name: leaf.type for leaf in iter_leaf_fields(schema)}


def parse_override_value(name: str, text: str, schema: type = TrainConfig) -> Any:
    """Turn a command-line string into the value a config field takes.

    YAML rules apply (``true``, ``[1, 2]``), except that a float field also takes forms YAML 1.1
    reads as strings (``2e-4``).

    Raises:
        ConfigError: for an unknown name or a value that does not parse.
    """
    types = _leaf_types(schema)
    if name not in types:
        raise ConfigError(f'unknown configuration name {name!r}; known: {", ".join(types)}')
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f'--{name} {text!r} is not a value: {err}') from err
    if types[name] is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError as err:
            raise ConfigError(f'--{name} {text!r} is not a number') from err
    if types[name] is str and not isinstance(value, str):
        return text
    return value


def parse_overrides(args: Sequence[str], schema: type = TrainConfig) -> dict[str, Any]:
    """Parse ``['--optim.lr', '2e-4', '--run.seed=3']`` into ``{'optim.lr': 2e-4, ...}``.

    ``schema`` is the run's config class (:data:`SCHEMAS`).

    Raises:
        ConfigError: for a stray word, a flag without value, or an unknown name.
    """
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith('--') or '.' not in arg.split('=', 1)[0]:
            raise ConfigError(f'unexpected argument {arg!r} (overrides are --section.field VALUE)')
        if '=' in arg:
            name, text = arg[2:].split('=', 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f'{arg} needs a value')
            name, text = arg[2:], args[i + 1]
            i += 2
        overrides[name] = parse_override_value(name, text, schema)
    return overrides


def load_train_config(
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    schema: type = TrainConfig,
) -> Any:
    """Read a training config from YAML (partial files allowed) and apply dotted overrides.

    Args:
        path: a YAML file of nested sections; None: the defaults.
        overrides: ``{dotted_name: value}`` applied last.
        schema: the config class (:class:`TrainConfig` for psfm, :class:`VlmTrainConfig`);
            fields a partial file leaves out keep that class's defaults.

    Returns:
        The validated config.

    Raises:
        ConfigError: naming the file for unreadable YAML, unknown names or bad values.
    """
    flat: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f'cannot read training config {path}: {err}') from err
        if doc is None:
            doc = {}
        if not isinstance(doc, Mapping):
            raise ConfigError(f'{path}: expected a mapping of sections')
        flat = flatten_nested(doc)
        try:
            base = from_flat_dict(schema, flat)
        except ConfigError as err:
            raise ConfigError(f'{path}: {err}') from err
    else:
        base = schema()
    if not overrides:
        return base
    return from_flat_dict(schema, dict(overrides), base=base)


def train_config_to_yaml(config: Any) -> str:
    """The config as YAML text (nested sections; :func:`load_train_config` reads it back)."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def save_train_config(config: Any, path: str | os.PathLike) -> Path:
    """Write :func:`train_config_to_yaml` to ``path``."""
    path = Path(path)
    path.write_text(train_config_to_yaml(config))
    return path


__all__ = [
    'ComputeConfig',
    'DistributedConfig',
    'OptimConfig',
    'PsfmConfig',
    'RunConfig',
    'TrainConfig',
    'VlmConfig',
    'VlmTrainConfig',
    'load_train_config',
    'parse_overrides',
    'save_train_config',
    'train_config_to_yaml',
]

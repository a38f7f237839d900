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

"""What ``spa3r train psfm|vlm`` do, without the command line: inputs checked, then the trainer.

:func:`check_psfm_inputs` validates everything that can be wrong before any model or data is
loaded (paths, the run folder's state); :func:`load_init_models` resolves ``--init``;
:func:`train_psfm` wires the data pipeline (:mod:`spa3r_ros.training.data`), the PSFM task and
the :class:`~spa3r_ros.training.trainer.Trainer`, on one process or one rank of ``torchrun``;
:func:`train_vlm` does the same for Spa3-VLM fine-tuning (:mod:`spa3r_ros.training.vlm`) on the
QA samples of :mod:`spa3r_ros.training.vlm_data`.
"""

from collections.abc import Callable, Sequence
import logging
import os
from pathlib import Path
from typing import Any

from spa3r_ros.configs.train import TrainConfig
from spa3r_ros.core.errors import CheckpointError, ConfigError
from spa3r_ros.training import checkpointing as ckpt
from spa3r_ros.training.distributed import (
    barrier,
    DistInfo,
    init_distributed,
    shutdown_distributed,
)
from spa3r_ros.training.trainer import Trainer, TrainSummary

logger = logging.getLogger(__name__)

DEFAULT_INIT = 'tiny-random'


def check_psfm_inputs(
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    resume: bool,
    heldout: Sequence[str | os.PathLike] = (),
) -> None:
    """Refuse what cannot work, naming the path.

    Raises:
        ConfigError: a missing data/held-out path, a run folder that already holds checkpoints
            without ``resume``, or ``resume`` without a checkpoint.
    """
    if not data:
        raise ConfigError('--data needs at least one bag, folder of bags or spa3r world output')
    for kind, paths in (('--data', data), ('--heldout', heldout)):
        for path in paths:
            if not Path(path).exists():
                raise ConfigError(f'{kind} {path}: no such file or folder')
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f'--out {out} is a file, not a run folder')
    has_checkpoint = ckpt.latest_checkpoint(out) is not None
    if resume and not has_checkpoint:
        raise ConfigError(f'--resume: {out} holds no checkpoint ({out}/{ckpt.CHECKPOINT_DIR})')
    if not resume and has_checkpoint:
        raise ConfigError(
            f'{out} already holds checkpoints: pass --resume to continue that run, or choose '
            'a new --out'
        )


def load_init_models(spec: str):
    """The bundle a run starts from: a registry preset name or a scene-models folder.

    Loaded on the CPU in float32 (the training copy moves to the training device).

    Raises:
        ConfigError: an unknown preset that is no folder either.
        CheckpointError: a folder that is no scene-models folder (the message names the file).
    """
    from spa3r_ros.models.bundle import BUNDLE_FILE, load_preset, load_registry, load_scene_models

    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / BUNDLE_FILE).is_file():
            raise CheckpointError(
                f'--init {path}: no {BUNDLE_FILE} there (a folder written by save_scene_models '
                'or a run export, RUN/export)'
            )
        return load_scene_models(path, device='cpu')
    presets = load_registry()
    if spec not in presets:
        raise ConfigError(
            f'--init {spec!r} is neither a folder nor a preset (presets: {sorted(presets)})'
        )
    return load_preset(spec, device='cpu')


def replace_tokenizer(models, folder: str | os.PathLike, seed: int):
    """``models`` with the tokenizer of ``folder`` and new, untrained embeddings of its size.

    Raises:
        ConfigError: ``folder`` holds no tokenizer, or one without Qwen2.5-VL's special tokens.
    """
    from transformers import AutoTokenizer

    from spa3r_ros.training.tokenizer import with_vocabulary

    path = Path(folder).expanduser()
    if not (path / 'tokenizer.json').is_file():
        raise ConfigError(
            f'vlm.tokenizer {path}: no tokenizer.json there (a folder of spa3r train tokenizer)'
        )
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    logger.info(
        'tokenizer %s: %d entries, new token embeddings (seed %d)', path, len(tokenizer), seed
    )
    return with_vocabulary(models, tokenizer, seed)


def image_hw_for(models, image_height: int = 0) -> tuple[int, int]:
    """Clip image size ``(H, W)``: the bundle's geometry width; ``image_height`` or 3/4 of it.

    The 3/4 default is rounded down to whole patches (what inference gives a 4:3 camera).
    """
    width = int(models.pixels.geometry_width)
    patch = int(models.spa3r.config.patch_size)
    if image_height:
        return int(image_height), width
    return max(patch, (width * 3 // 4) // patch * patch), width


def train_psfm(
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: TrainConfig,
    *,
    init: str = DEFAULT_INIT,
    resume: bool = False,
    heldout: Sequence[str | os.PathLike] = (),
) -> TrainSummary:
    """Run (or resume) a PSFM fine-tuning; the same call on every ``torchrun`` rank.

    Args:
        data: bags, folders of bags or ``spa3r world`` output.
        out: the run folder.
        config: the resolved config.
        init: preset name or scene-models folder.
        resume: continue the newest checkpoint of ``out``.
        heldout: held-out recordings (evaluated before, every ``run.eval_every`` and at the end).

    Returns:
        The run's summary (complete on rank 0).
    """
    from spa3r_ros.training.data import ClipDataset, expand_sources, make_loader
    from spa3r_ros.training.psfm import build_psfm_task

    check_psfm_inputs(data, out, resume, heldout)
    info = init_distributed(config.distributed, config.run.device)
    try:
        models = load_init_models(init)
        image_hw = image_hw_for(models, config.psfm.image_height)
        task = build_psfm_task(models, config, device=info.device)
        train_set = ClipDataset(
            expand_sources(list(data)),
            config.data,
            image_hw=image_hw,
            rank=info.rank,
            world_size=info.world_size,
        )
        heldout_batches = None
        if heldout:
            held_set = ClipDataset(
                expand_sources(list(heldout)),
                config.data,
                image_hw=image_hw,
                rank=info.rank,
                world_size=info.world_size,
            )
            held_set.set_epoch(0)
            heldout_batches = make_loader(held_set, 0)
        trainer = Trainer(
            task,
            config,
            out,
            train_set,
            heldout_data=heldout_batches,
            dist_info=info,
            make_iter=lambda dataset: make_loader(dataset, config.data.num_workers),
        )
        return trainer.fit(resume=resume)
    finally:
        shutdown_distributed()


#: ``make_data(sources, config, models, rank, world_size, heldout) -> (dataset, make_iter)``:
#: the QA sample pipeline of one rank (``make_iter(dataset)`` gives one epoch's batches).
VlmDataFactory = Callable[..., tuple[Any, Callable[[Any], Any]]]


def vlm_qa_data(
    sources: Sequence[str | os.PathLike],
    config: Any,
    models: Any,
    rank: int,
    world_size: int,
    heldout: bool = False,
) -> tuple[Any, Callable[[Any], Any]]:
    """The QA sample dataset of :mod:`spa3r_ros.training.vlm_data` for one rank.

    The seam between the task and the data pipeline: the one place that names that module's
    API. With ``data.cache_dir`` the frozen branches' outputs are computed once by rank 0
    (:func:`~spa3r_ros.training.vlm_data.fill_cache`, frozen modules in eval mode; the other
    ranks wait) and read from disk afterwards.
    """
    from spa3r_ros.training import vlm_data
    from spa3r_ros.training.data import make_loader

    data_config = config.data
    if data_config.cache_dir and (config.vlm.train_vision or config.vlm.train_geometry_encoder):
        raise ConfigError(
            'data.cache_dir caches the frozen branches, but vlm.train_vision or '
            'vlm.train_geometry_encoder trains one of them: leave data.cache_dir empty'
        )
    dataset = vlm_data.dataset_for_models(
        vlm_data.expand_qa_sources(list(sources)),
        data_config,
        models,
        rank=rank,
        world_size=world_size,
        progress=rank == 0,
    )
    if data_config.cache_dir:
        cache = vlm_data.FrozenFeatureCache(
            data_config.cache_dir, models.vlm, dataset.preprocessing
        )
        if rank == 0:
            hits, computed = vlm_data.fill_cache(dataset, models.vlm, cache, progress=True)
            logger.info('feature cache: %d entries reused, %d computed', hits, computed)
        barrier(DistInfo(rank=rank, world_size=world_size))
        dataset.cache = cache
    if heldout:
        dataset.set_epoch(0)
    return dataset, lambda ds: make_loader(ds, data_config.num_workers)


def train_vlm(
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: Any,
    *,
    init: str = DEFAULT_INIT,
    resume: bool = False,
    heldout: Sequence[str | os.PathLike] = (),
    heldout_scorer: Callable[[Any], dict[str, float]] | None = None,
    make_data: VlmDataFactory | None = None,
) -> TrainSummary:
    """Run (or resume) a Spa3-VLM fine-tuning; the same call on every ``torchrun`` rank.

    Args:
        data: scene folders with ``qa.jsonl``, folders of them, or bags with QA files.
        out: the run folder.
        config: the resolved :class:`~spa3r_ros.configs.train.VlmTrainConfig`.
        init: preset name or scene-models folder.
        resume: continue the newest checkpoint of ``out``.
        heldout: held-out QA data: its answer loss is evaluated before, every
            ``run.eval_every`` and at the end.
        heldout_scorer: ``spa3r eval``'s scores of the current model (rank 0, at the same
            points; the command line builds it over ``heldout`` with the scene engine).
        make_data: the sample pipeline (default :func:`vlm_qa_data`).

    Returns:
        The run's summary (complete on rank 0).
    """
    from spa3r_ros.training.vlm import build_vlm_task

    make_data = make_data or vlm_qa_data
    check_psfm_inputs(data, out, resume, heldout)
    info = init_distributed(config.distributed, config.run.device)
    try:
        models = load_init_models(init)
        if config.vlm.tokenizer:
            models = replace_tokenizer(models, config.vlm.tokenizer, config.run.seed)
        task = build_vlm_task(
            models,
            config,
            device=info.device,
            heldout_scorer=heldout_scorer if info.is_main else None,
        )
        train_set, make_iter = make_data(data, config, models, info.rank, info.world_size)
        heldout_batches = None
        if heldout:
            held_set, held_iter = make_data(
                heldout, config, models, info.rank, info.world_size, heldout=True
            )
            heldout_batches = held_iter(held_set)
        trainer = Trainer(
            task,
            config,
            out,
            train_set,
            heldout_data=heldout_batches,
            dist_info=info,
            make_iter=make_iter,
        )
        return trainer.fit(resume=resume)
    finally:
        shutdown_distributed()

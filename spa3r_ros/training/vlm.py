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

"""The Spa3-VLM fine-tuning task: answer tokens of spatial questions, optionally with GASP.

What trains (``vlm.trainable``; spa3r_spec.md 3.6 is the reference's ``full`` recipe):

* ``adaptor``: the geometry injector only (projector, cross-attention, norms, adaptor, gate);
* ``lora``: the injector + LoRA adapters (``peft``) on the language model's attention and MLP
  projections (``vlm.lora_targets``), rank ``vlm.lora_rank``;
* ``full``: the injector + the whole language model (embeddings, layers, final norm, LM head).

The Spa3R encoder and Qwen's vision tower (merger included) are frozen, as in the reference: in
eval mode, outside the optimiser, and run under ``no_grad`` (their outputs may also come cached
from the data pipeline). A model trained from scratch (``scripts/train_synthetic.sh``) has no
pre-trained vision tower, so ``vlm.train_vision`` trains it too, and
``vlm.train_geometry_encoder`` trains the Spa3R encoder (never its VGGT), with gradients through
them and no feature cache. ``vlm.no_geometry`` is the paper's no-geometry ablation: the Spa3R
branch is switched off (``Spa3VLM.use_geometry`` False), so the injector is never used and is
frozen too.

Loss: token cross-entropy on the assistant answer tokens (``labels`` != -100, the next-token
shift done here) + ``vlm.gasp_weight`` x the GASP loss (:mod:`spa3r_ros.training.gasp`) of a small
correspondence head on the language model's per-layer hidden states; the head is trainable, is
stored in checkpoints and is dropped at export.

Batch contract (the data pipeline, :mod:`spa3r_ros.training.vlm_data`): ``input_ids`` ``[B, L]``,
``attention_mask`` ``[B, L]``, ``labels`` ``[B, L]`` aligned with ``input_ids``,
``image_grid_thw`` ``[I, 3]``, ``pixel_values`` (Qwen patchified) or ``image_features`` (I tensors
``[n_i, D]``), ``images_per_sample`` (B ints), ``geometry_images`` ``[B, S, 3, H, W]`` or
``geometry_latents`` ``[B, Q, E]``, optional ``gasp`` and ``meta``.

Export (``RUN/export``): a scene-models folder (:func:`~spa3r_ros.models.bundle.save_scene_models`)
of the trained Spa3-VLM, LoRA merged into the base weights (``merge_and_unload``) first, so the
node, ``spa3r replay --checkpoint`` and ``spa3r eval --checkpoint`` load it like any checkpoint.
"""

from collections.abc import Callable, Mapping, Sequence
import copy
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from spa3r_ros.core.errors import ConfigError
from spa3r_ros.training.tasks import LOSS_KEY, TrainTask

logger = logging.getLogger(__name__)

TRAINABLE_SETS = ('adaptor', 'lora', 'full')
IGNORE_INDEX = -100
LM_LOSS_KEY = 'lm'
GASP_LOSS_KEY = 'gasp'
LORA_ADAPTER = 'default'
DEFAULT_LORA_TARGETS = (
    'q_proj',
    'k_proj',
    'v_proj',
    'o_proj',
    'gate_proj',
    'up_proj',
    'down_proj',
)

#: ``objective(hidden_states, gasp_batch, input_ids, image_grid_thw, images_per_sample, head)``
#: ``-> dict`` with the GASP loss under ``'loss'``; ``hidden_states`` is one ``[B, L, D]`` tensor
#: per language-model layer (the layer outputs, in order), ``input_ids`` ``[B, L]`` locate the
#: image tokens.
GaspObjective = Callable[[Sequence[Tensor], Any, Tensor, Tensor, Sequence[int], nn.Module], dict]
#: ``scorer(scene_models) -> {metric name: value}``: held-out eval scores of the current model.
HeldoutScorer = Callable[[Any], dict[str, float]]


def answer_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy over the labelled (answer) positions.

    Args:
        logits: ``[B, L, V]`` logits of the prompt + answer.
        labels: ``[B, L]`` the token ids to predict at each position (``-100``: not scored);
            aligned with the input ids (the shift by one is done here).

    Returns:
        A scalar; 0 (still attached to ``logits``) when no position is labelled.
    """
    targets = labels[:, 1:]
    scored = targets != IGNORE_INDEX
    # Only labelled positions: a full [B, L, V] float32 copy would cost L x V memory.
    picked = logits[:, :-1][scored].float()
    if picked.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(picked, targets[scored], reduction='mean')


def language_model(vlm: nn.Module) -> nn.Module:
    """The Qwen text decoder of a Spa3VLM (a peft ``LoraModel`` around it once LoRA is on)."""
    return vlm.qwen.model.language_model


def decoder_layers(vlm: nn.Module) -> list[nn.Module]:
    """The decoder layers of the language model (through a LoRA wrapper when there is one)."""
    lm = language_model(vlm)
    inner = getattr(lm, 'model', lm) if _is_lora_wrapped(lm) else lm
    return list(inner.layers)


def _is_lora_wrapped(module: nn.Module) -> bool:
    from peft import LoraModel

    return isinstance(module, LoraModel)


def add_lora(
    vlm: nn.Module,
    rank: int,
    alpha: float,
    dropout: float,
    targets: Sequence[str],
    seed: int = 0,
):
    """Wrap the language model in a peft ``LoraModel`` (adapters on ``targets``; in place).

    The base weights are frozen by peft; ``lora_B`` starts at zero, so the model's outputs are
    unchanged until training moves it. ``lora_A`` is drawn from ``seed`` (the global RNG is left
    as it was), so the same run config gives the same adapters.
    """
    from peft import LoraConfig, LoraModel

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        bias='none',
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapped = LoraModel(language_model(vlm), config, LORA_ADAPTER)
    vlm.qwen.model.language_model = wrapped
    return vlm


def merged_copy(vlm: nn.Module) -> nn.Module:
    """A copy of ``vlm`` on the CPU with LoRA merged into the base weights (``merge_and_unload``).

    A model without LoRA is copied as it is. The live model is left untouched (training or
    evaluation may continue with it).
    """
    clone = copy.deepcopy(vlm).to('cpu')
    lm = language_model(clone)
    if _is_lora_wrapped(lm):
        clone.qwen.model.language_model = lm.merge_and_unload()
    return clone


class VlmModule(nn.Module):
    """The Spa3-VLM answer loss as a module (what DDP/FSDP wrap).

    ``forward(**batch inputs)`` returns ``{'lm', ['gasp'], 'loss'}`` scalars (see the module
    docstring for the inputs).

    Args:
        vlm: the Spa3VLM (its frozen parts already frozen).
        gasp_head: the trainable correspondence head (None: GASP off).
        gasp_weight: weight of the GASP loss.
        gasp_objective: computes the GASP loss (required with a head).
    """

    def __init__(
        self,
        vlm: nn.Module,
        gasp_head: nn.Module | None = None,
        gasp_weight: float = 0.0,
        gasp_objective: GaspObjective | None = None,
        *,
        train_vision: bool = False,
        train_geometry_encoder: bool = False,
    ) -> None:
        super().__init__()
        if gasp_head is not None and gasp_objective is None:
            raise ValueError('a GASP head needs a GASP objective')
        self.train_vision = train_vision
        self.train_geometry_encoder = train_geometry_encoder
        self.vlm = vlm
        self.gasp_head = gasp_head
        self.gasp_weight = float(gasp_weight)
        self.gasp_objective = gasp_objective

    def forward(
        self,
        input_ids: Tensor,
        labels: Tensor,
        attention_mask: Tensor | None = None,
        image_grid_thw: Tensor | None = None,
        pixel_values: Tensor | None = None,
        image_features: Sequence[Tensor] | None = None,
        images_per_sample: Sequence[int] | None = None,
        geometry_images: Tensor | None = None,
        geometry_latents: Tensor | None = None,
        gasp: Any = None,
    ) -> dict[str, Tensor]:
        vlm = self.vlm
        if image_features is None and pixel_values is not None:
            # A frozen tower keeps no graph.
            with torch.set_grad_enabled(self.train_vision and torch.is_grad_enabled()):
                image_features = vlm.image_features(pixel_values, image_grid_thw)
        if geometry_latents is None and geometry_images is not None and vlm.use_geometry:
            if self.train_geometry_encoder:
                geometry_latents = vlm.geometry_encoder.encode_trainable(geometry_images)
            else:
                with torch.no_grad():
                    # Spa3R encodes under inference mode: its latent is cloned out of it.
                    geometry_latents = _trainable_copy(vlm.encode_geometry(geometry_images))
        use_gasp = self.gasp_head is not None and gasp is not None
        hidden: list[Tensor] = []
        handles = []
        if use_gasp:
            for layer in decoder_layers(vlm):
                handles.append(layer.register_forward_hook(_keep_output(hidden)))
        try:
            out = vlm(
                input_ids,
                attention_mask=attention_mask,
                image_grid_thw=image_grid_thw,
                image_features=image_features,
                geometry_latents=geometry_latents,
            )
        finally:
            for handle in handles:
                handle.remove()
        lm_loss = answer_cross_entropy(out.logits, labels)
        losses = {LM_LOSS_KEY: lm_loss}
        total = lm_loss
        if use_gasp:
            per_image = images_per_sample
            if per_image is None:
                per_image = vlm._images_per_sample(input_ids, image_features)
            terms = self.gasp_objective(
                hidden, gasp, input_ids, image_grid_thw, per_image, self.gasp_head
            )
            losses[GASP_LOSS_KEY] = terms[LOSS_KEY]
            for name, value in terms.items():
                # Parts of the GASP loss, for the logs (scalars only; detached).
                if name != LOSS_KEY and isinstance(value, Tensor) and value.ndim == 0:
                    losses[f'{GASP_LOSS_KEY}/{name}'] = value.detach()
            total = total + self.gasp_weight * terms[LOSS_KEY]
        losses[LOSS_KEY] = total
        return losses


def _keep_output(store: list[Tensor]):
    def hook(_module: nn.Module, _args: tuple, output: Any) -> None:
        store.append(output[0] if isinstance(output, tuple) else output)

    return hook


class VlmTask(TrainTask):
    """Spa3-VLM fine-tuning (see the module docstring).

    Args:
        scene_models: the bundle the run starts from (float32; its VLM is trained in place and
            :meth:`export` writes a copy of the bundle with the trained VLM).
        trainable: ``adaptor``, ``lora`` or ``full``.
        device: the training device.
        lora_rank: LoRA rank (``lora``).
        lora_alpha: LoRA alpha (scale alpha / rank).
        lora_dropout: dropout on the LoRA branch's input.
        lora_targets: names of the language model's linear layers that get adapters.
        no_geometry: train with the Spa3R branch off (the ablation); the injector is frozen.
        train_vision: train the vision tower too (see the module docstring).
        train_geometry_encoder: train the Spa3R encoder too, not its VGGT (ignored with
            ``no_geometry``).
        gasp_weight: weight of the GASP loss (0: off).
        gasp_head: the correspondence head (required when ``gasp_weight`` > 0).
        gasp_objective: the GASP loss function (required when ``gasp_weight`` > 0).
        heldout_scorer: eval scores of the current model on held-out scenes (None: none).
        seed: seed of the LoRA adapters' initial weights.
        keyframe_window: the keyframe window of the training questions
            (``VlmDataConfig.keyframe_config().window``); the export records it so the engine
            can match it.

    Raises:
        ConfigError: an unknown trainable set, or a set that leaves nothing to train.
    """

    name = 'vlm'

    def __init__(
        self,
        scene_models: Any,
        trainable: str = 'full',
        *,
        device: torch.device | str = 'cpu',
        lora_rank: int = 16,
        lora_alpha: float = 32.0,
        lora_dropout: float = 0.05,
        lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
        no_geometry: bool = False,
        train_vision: bool = False,
        train_geometry_encoder: bool = False,
        gasp_weight: float = 0.0,
        gasp_head: nn.Module | None = None,
        gasp_objective: GaspObjective | None = None,
        heldout_scorer: HeldoutScorer | None = None,
        seed: int = 0,
        keyframe_window: int | None = None,
    ) -> None:
        if trainable not in TRAINABLE_SETS:
            raise ConfigError(f'vlm.trainable {trainable!r} is not one of {TRAINABLE_SETS}')
        if trainable == 'adaptor' and no_geometry:
            raise ConfigError(
                'vlm.trainable adaptor with vlm.no_geometry: the adaptor gets no gradient '
                'without geometry, so nothing would train (use lora or full)'
            )
        if gasp_weight > 0 and (gasp_head is None or gasp_objective is None):
            raise ValueError('gasp_weight > 0 needs a GASP head and objective')
        self.device = torch.device(device)
        self.scene_models = scene_models
        self.trainable = trainable
        self.no_geometry = no_geometry
        self.train_vision = train_vision
        self.train_geometry_encoder = train_geometry_encoder and not no_geometry
        self.heldout_scorer = heldout_scorer
        self.keyframe_window = keyframe_window
        self._lora = (lora_rank, lora_alpha, lora_dropout, tuple(lora_targets), seed)
        vlm = scene_models.vlm
        vlm.requires_grad_(False)
        vlm.use_geometry = not no_geometry
        if trainable == 'lora':
            add_lora(vlm, lora_rank, lora_alpha, lora_dropout, lora_targets, seed=seed)
        self.vlm = vlm
        head = gasp_head if gasp_weight > 0 else None
        self.module = VlmModule(
            vlm,
            head,
            gasp_weight,
            gasp_objective,
            train_vision=self.train_vision,
            train_geometry_encoder=self.train_geometry_encoder,
        ).to(self.device)
        self.freeze()

    # ------------------------------------------------------------------ parameters

    def trained_modules(self) -> list[nn.Module]:
        """The modules whose parameters all train (LoRA adapters are added in :meth:`freeze`)."""
        vlm = self.vlm
        modules: list[nn.Module] = []
        if not self.no_geometry:
            modules.append(vlm.injector)
        if self.train_vision:
            modules.append(vlm.qwen.model.visual)
        if self.train_geometry_encoder:
            spa3r = vlm.geometry_encoder
            modules.extend([spa3r.projection, spa3r.query_embed, spa3r.encoder])
        if self.trainable == 'full':
            modules.extend([language_model(vlm), vlm.qwen.lm_head])
        if self.module.gasp_head is not None:
            modules.append(self.module.gasp_head)
        return modules

    def frozen_modules(self) -> list[nn.Module]:
        vlm = self.vlm
        frozen = [] if self.train_vision else [vlm.qwen.model.visual]
        if vlm.geometry_encoder is not None and not self.train_geometry_encoder:
            frozen.append(vlm.geometry_encoder)
        elif vlm.geometry_encoder is not None:
            frozen.append(vlm.geometry_encoder.aggregator)
        if self.no_geometry:
            frozen.append(vlm.injector)
        if self.trainable == 'adaptor':
            frozen.extend([language_model(vlm), vlm.qwen.lm_head])
        elif self.trainable == 'lora':
            # The LoRA-wrapped decoder stays in train mode (adapter dropout); the head is frozen.
            frozen.append(vlm.qwen.lm_head)
        return frozen

    def freeze(self) -> None:
        self.module.requires_grad_(False)
        for module in self.trained_modules():
            module.requires_grad_(True)
        if self.trainable == 'lora':
            for name, param in language_model(self.vlm).named_parameters():
                if 'lora_' in name:
                    param.requires_grad_(True)
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def checkpoint_blocks(self) -> list[nn.Module]:
        return decoder_layers(self.vlm) if self.trainable != 'adaptor' else []

    # ------------------------------------------------------------------ data

    def batch_size(self, batch: Mapping[str, Any]) -> int:
        return int(batch['input_ids'].shape[0])

    def prepare(
        self, batch: Mapping[str, Any], *, step: int, rank: int, heldout: bool = False
    ) -> dict[str, Any]:
        device = self.device

        def moved(value: Any) -> Any:
            if isinstance(value, Tensor):
                return _trainable_copy(value.to(device))
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], Tensor):
                return tuple(_trainable_copy(v.to(device)) for v in value)
            return value

        inputs: dict[str, Any] = {}
        for key in (
            'input_ids',
            'labels',
            'attention_mask',
            'image_grid_thw',
            'pixel_values',
            'image_features',
            'images_per_sample',
            'geometry_images',
            'geometry_latents',
        ):
            if batch.get(key) is not None:
                inputs[key] = moved(batch[key])
        if self.module.gasp_head is not None and batch.get('gasp') is not None:
            inputs['gasp'] = _to_device(batch['gasp'], device)
        return inputs

    # ------------------------------------------------------------------ held-out scores

    def evaluate_extra(self, step: int) -> dict[str, float]:
        """Held-out eval scores of the current weights (``spa3r eval``'s, through the engine).

        The live model answers (LoRA unmerged: the same function), in eval mode and without
        gradients; the global RNG state is restored afterwards so a resumed run stays bitwise.
        """
        if self.heldout_scorer is None:
            return {}
        self.set_train_mode(False)
        devices = [self.device] if self.device.type == 'cuda' else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                # Scored as the export will be used: with the window its questions were made with.
                view = dataclasses.replace(
                    self.scene_models,
                    vlm=self.vlm,
                    device=self.device,
                    keyframe_window=self.keyframe_window,
                )
                return dict(self.heldout_scorer(view))
        finally:
            self.set_train_mode(True)

    # ------------------------------------------------------------------ output

    def export(
        self, folder: str | os.PathLike, module_state: Mapping[str, Tensor] | None = None
    ) -> Path:
        from spa3r_ros.training.export import save_bundle_atomically

        vlm = self.vlm if module_state is None else self._unsharded(module_state)
        export_vlm = merged_copy(vlm).eval()
        # The switch is no weight: an export of a no-geometry run keeps its (untrained) adaptor,
        # and the user turns geometry off at evaluation (spa3r eval --no-geometry).
        export_vlm.use_geometry = True
        suffix = '+vlm-nogeom' if self.no_geometry else f'+vlm-{self.trainable}'
        bundle = dataclasses.replace(
            self.scene_models,
            vlm=export_vlm,
            device=torch.device('cpu'),
            model_id=f'{self.scene_models.model_id}{suffix}',
            # The keyframe window the answers were learnt with: the engine should match it.
            keyframe_window=self.keyframe_window,
        )
        return save_bundle_atomically(bundle, folder)

    def _unsharded(self, module_state: Mapping[str, Tensor]) -> nn.Module:
        """A CPU model of the live one's architecture holding ``module_state`` (FSDP export).

        Built afresh, not copied: the live parameters are DTensor shards.
        """
        from spa3r_ros.models.spa3r.model import Spa3R
        from spa3r_ros.models.vlm.model import Spa3VLM

        live = self.vlm
        encoder = None
        if live.geometry_encoder is not None:
            encoder = Spa3R(live.geometry_encoder.config)
        fresh = Spa3VLM(live.config, live.geometry_config, geometry_encoder=encoder)
        if self.trainable == 'lora':
            rank, alpha, dropout, targets, seed = self._lora
            add_lora(fresh, rank, alpha, dropout, targets, seed=seed)
        prefix = 'vlm.'
        own = {k[len(prefix) :]: v for k, v in module_state.items() if k.startswith(prefix)}
        fresh.load_state_dict(own, strict=True)
        return fresh


def _trainable_copy(tensor: Tensor) -> Tensor:
    # Tensors made under torch.inference_mode (frame preprocessing, the engine) cannot enter a
    # graph that autograd records; a clone made outside that mode can.
    return tensor.clone() if tensor.is_inference() else tensor


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return _trainable_copy(value.to(device))
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """TensorBoard scalars of a ``spa3r eval`` report: overall and per-category scores.

    Keys: ``eval/strict``, ``eval/lenient``, ``eval/strict/<category>``,
    ``eval/lenient/<category>`` (percent; missing or NaN values left out).
    """
    metrics: dict[str, float] = {}
    overall = report.get('overall') or {}
    for kind in ('strict', 'lenient'):
        if overall.get(kind) is not None:
            metrics[f'eval/{kind}'] = float(overall[kind])
    for category, scores in (report.get('categories') or {}).items():
        for kind in ('strict', 'lenient'):
            if scores.get(kind) is not None:
                metrics[f'eval/{kind}/{category}'] = float(scores[kind])
    return metrics


def build_vlm_task(
    scene_models: Any,
    config: Any,
    device: torch.device | str = 'cpu',
    *,
    heldout_scorer: HeldoutScorer | None = None,
    gasp_head: nn.Module | None = None,
    gasp_objective: GaspObjective | None = None,
) -> VlmTask:
    """A :class:`VlmTask` from a run config's ``vlm`` section (and ``run.seed``).

    Args:
        scene_models: the starting bundle (on the CPU, float32).
        config: the run config (``vlm`` is read).
        device: the training device.
        heldout_scorer: held-out eval scores (see :class:`VlmTask`).
        gasp_head: the correspondence head; default: the GASP module's, sized for the model.
        gasp_objective: the GASP loss; default: the GASP module's.
    """
    section = config.vlm
    if section.gasp_weight > 0 and (gasp_head is None or gasp_objective is None):
        gasp_head, gasp_objective = default_gasp(
            scene_models.vlm, gasp_head, gasp_objective, seed=config.run.seed
        )
    return VlmTask(
        scene_models,
        section.trainable,
        device=device,
        lora_rank=section.lora_rank,
        lora_alpha=section.lora_alpha,
        lora_dropout=section.lora_dropout,
        lora_targets=tuple(section.lora_targets),
        no_geometry=section.no_geometry,
        train_vision=section.train_vision,
        train_geometry_encoder=section.train_geometry_encoder,
        gasp_weight=section.gasp_weight,
        gasp_head=gasp_head,
        gasp_objective=gasp_objective,
        heldout_scorer=heldout_scorer,
        seed=config.run.seed,
        keyframe_window=config.data.keyframe_config().window,
    )


def default_gasp(
    vlm: nn.Module, head: nn.Module | None, objective: GaspObjective | None, seed: int = 0
) -> tuple[nn.Module, GaspObjective]:
    """The GASP head and objective of :mod:`spa3r_ros.training.gasp`, sized for ``vlm``.

    One head norm per decoder layer (the hooks of :class:`VlmModule` give each layer's output);
    the loss is ``gasp_loss``'s ``total`` (InfoNCE + depth term), its two parts are logged. A new
    head is drawn from ``seed`` on the CPU, not from the global generator (whose seed differs
    from process to process), so two runs of one config start from the same head.
    """
    from spa3r_ros.training import gasp as gasp_module

    text = vlm.config.text_config
    if head is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = gasp_module.CorrespondenceHead(
                text.hidden_size, num_layers=text.num_hidden_layers
            )
    image_token_id = vlm.config.image_token_id

    def objective_fn(hidden, batch_gasp, input_ids, image_grid_thw, images_per_sample, gasp_head):
        targets = gasp_module.gasp_targets(
            batch_gasp,
            image_grid_thw,
            images_per_sample,
            input_ids=input_ids,
            image_token_id=image_token_id,
        )
        terms = gasp_module.gasp_loss(
            hidden, targets.positions, targets.correspondences, targets.depths, gasp_head
        )
        return {'loss': terms['total'], 'infonce': terms['infonce'], 'depth': terms['depth']}

    return head, objective or objective_fn

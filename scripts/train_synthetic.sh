#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The synthetic-small recipe: from nothing to a trained Spa3-VLM export, with the project's own
# tools only (spa3r world -> spa3r qa -> spa3r train tokenizer -> spa3r train psfm ->
# spa3r train vlm).
#
#   scripts/train_synthetic.sh RUN                 # the recipe (geometry on): RUN/vlm/export
#   scripts/train_synthetic.sh RUN --no-geometry   # the same recipe without the Spa3R branch
#
# Both write under RUN only (data/, tokenizer/, psfm/, vlm/ or vlm_nogeom/, recipe.log);
# TensorBoard logs are in RUN/psfm/tensorboard and RUN/vlm*/tensorboard. A stage whose output
# exists is not run again, so a second call continues an interrupted recipe (a training stage
# resumes from its last checkpoint). Run both variants at once with THREADS=1 each to use both cores of a 2-core machine.
#
# Seeds: training scenes come from world seed 0, the validation scenes (held-out loss and scores
# during training, for choosing nothing but watched) from 500000. Seeds from 1000000 up are the
# evaluation's and the demo's: never trained on, never looked at during training.
#
# Sizes are environment variables (defaults: the shipped model, about 2 hours on 2 CPU cores for
# both variants side by side); a GPU machine can raise them, e.g. TRAIN_SCENES=2000 VLM_STEPS=40000.
set -euo pipefail

usage() { echo "usage: $0 RUN [--no-geometry]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
RUN="$1"; shift
NO_GEOMETRY=false
for arg in "$@"; do
  case "$arg" in
    --no-geometry) NO_GEOMETRY=true ;;
    *) usage ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TRAIN_SCENES="${TRAIN_SCENES:-320}"
VAL_SCENES="${VAL_SCENES:-4}"
FRAMES="${FRAMES:-48}"
WIDTH="${WIDTH:-160}"
HEIGHT="${HEIGHT:-120}"
QUESTIONS_PER_FAMILY="${QUESTIONS_PER_FAMILY:-10}"
PSFM_STEPS="${PSFM_STEPS:-1500}"
VLM_STEPS="${VLM_STEPS:-3600}"
TOKENIZER_VOCAB="${TOKENIZER_VOCAB:-0}"
GASP_WEIGHT="${GASP_WEIGHT:-1.0}"   # the GASP term on the visual tokens (bags with depth); 0: off
FAMILY_BALANCE="${FAMILY_BALANCE:-0.5}"
VLM_BATCH="${VLM_BATCH:-4}"
VLM_LR="${VLM_LR:-1e-3}"
THREADS="${THREADS:-0}"
DEVICE="${DEVICE:-auto}"
TRAIN_SEED=0
VAL_SEED=500000

mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
LOG="$RUN/recipe.log"
[[ "$NO_GEOMETRY" == true ]] && LOG="$RUN/recipe_nogeom.log"
if [[ "$THREADS" != 0 ]]; then
  export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
fi
spa3r() { "$PYTHON" -m spa3r_ros.cli.main "$@"; }
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
START=$(date +%s)
say "recipe start: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
  "no_geometry=$NO_GEOMETRY, train_scenes=$TRAIN_SCENES, vlm_steps=$VLM_STEPS," \
  "tokenizer_vocab=$TOKENIZER_VOCAB, gasp_weight=$GASP_WEIGHT, threads=$THREADS"

# 1. Scenes and questions (shared by both variants; a lock keeps two recipes from racing).
make_split() {  # name seed count
  local folder="$RUN/data/$1"
  if [[ ! -f "$folder/.done" ]]; then
    say "world: $3 scenes of seed $2 -> $folder"
    rm -rf "$folder"
    spa3r world "$folder" --scenes "$3" --seed "$2" --width "$WIDTH" --height "$HEIGHT" \
      --frames "$FRAMES" --no-progress
    # Two at a time: most of a QA call is Python's start-up.
    printf '%s\0' "$folder"/scene_* | xargs -0 -P 2 -I SCENE \
      "$PYTHON" -m spa3r_ros.cli.main qa SCENE --out SCENE/qa.jsonl \
      --per-family "$QUESTIONS_PER_FAMILY" --seed 0 > /dev/null
    touch "$folder/.done"
  fi
}
mkdir -p "$RUN/data"
(
  flock 9
  make_split train "$TRAIN_SEED" "$TRAIN_SCENES"
  make_split val "$VAL_SEED" "$VAL_SCENES"
) 9> "$RUN/data/.lock"
say "data: $(cat "$RUN"/data/train/scene_*/qa.jsonl | wc -l) training questions"

# 2. Optionally (TOKENIZER_VOCAB=N > 0), a prompt tokenizer shared by both variants: byte-level BPE
#    learnt from the training questions, digits one per token. The default, 0, keeps
#    small-random's byte-level tokenizer: the learnt one did not help (see the model card).
TOKENIZER=()
if [[ "$TOKENIZER_VOCAB" != 0 ]]; then
  (
    flock 9
    if [[ ! -f "$RUN/tokenizer/tokenizer.json" ]]; then
      say "train tokenizer: at most $TOKENIZER_VOCAB entries"
      spa3r train tokenizer --data "$RUN/data/train" --out "$RUN/tokenizer" \
        --vocab-size "$TOKENIZER_VOCAB" 2>&1 | tee -a "$LOG"
    fi
  ) 9> "$RUN/data/.lock"
  TOKENIZER=(--vlm.tokenizer "$RUN/tokenizer")
fi

# 3. PSFM pre-training of the small Spa3R (self-supervised, on the training bags).
INIT=small-random
if [[ "$NO_GEOMETRY" == false ]]; then
  if [[ ! -f "$RUN/psfm/export/scene_models.json" ]]; then
    RESUME=(); [[ -d "$RUN/psfm/checkpoints" ]] && RESUME=(--resume)
    say "train psfm: $PSFM_STEPS steps"
    spa3r train psfm --data "$RUN/data/train" --heldout "$RUN/data/val" --out "$RUN/psfm" \
      --init small-random --max-steps "$PSFM_STEPS" "${RESUME[@]}" \
      --psfm.teacher tiny --psfm.target_mode deterministic \
      --data.frames_per_clip 16 --data.views_min 4 --data.views_max 8 \
      --data.images_per_batch 16 --optim.grad_accum 1 --optim.lr 1e-3 --optim.min_lr 1e-4 \
      --run.eval_every 500 --run.save_every 500 --run.device "$DEVICE" 2>&1 | tee -a "$LOG"
  fi
  INIT="$RUN/psfm/export"
fi

# 4. Spa3-VLM fine-tuning on the questions (from scratch: vision tower and language model train;
#    the Spa3R encoder trains too, its VGGT stays frozen; new token embeddings for the tokenizer).
OUT="$RUN/vlm"; EXTRA=(--vlm.train_geometry_encoder true)
GASP=(--data.gasp false)
[[ "$GASP_WEIGHT" != 0 ]] && GASP=(--data.gasp true --gasp-weight "$GASP_WEIGHT")
if [[ "$NO_GEOMETRY" == true ]]; then OUT="$RUN/vlm_nogeom"; EXTRA=(--vlm.no_geometry true); fi
if [[ ! -f "$OUT/export/scene_models.json" ]]; then
  RESUME=(); [[ -d "$OUT/checkpoints" ]] && RESUME=(--resume)
  say "train vlm: $VLM_STEPS steps of $VLM_BATCH questions -> $OUT"
  spa3r train vlm --data "$RUN/data/train" --heldout "$RUN/data/val" --out "$OUT" \
    --init "$INIT" --trainable full --max-steps "$VLM_STEPS" "${RESUME[@]}" \
    --vlm.train_vision true "${EXTRA[@]}" "${TOKENIZER[@]}" "${GASP[@]}" \
    --data.batch_size "$VLM_BATCH" --data.family_balance "$FAMILY_BALANCE" --optim.grad_accum 1 --optim.lr "$VLM_LR" \
    --optim.min_lr 1e-5 --optim.warmup_steps 100 --optim.weight_decay 0.01 \
    --run.eval_every 1200 --run.save_every 400 --run.device "$DEVICE" 2>&1 | tee -a "$LOG"
fi
say "export: $OUT/export ($(( ($(date +%s) - START) / 60 )) min in this call)"

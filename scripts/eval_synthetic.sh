#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The evaluation table of the synthetic-small model card: held-out scenes from seeds no recipe
# trains on, every family, strict and lenient, for the recipe's model, its no-geometry ablation
# and tiny-random, beside the chance and frequency baselines.
#
#   scripts/eval_synthetic.sh RUN [EVAL_DIR]
#
# RUN is a scripts/train_synthetic.sh folder holding vlm/export and vlm_nogeom/export (or set
# GEOMETRY_MODEL / NO_GEOMETRY_MODEL to other export folders). Writes EVAL_DIR (default
# RUN/eval): the scenes, one spa3r eval report per model, table.md and targets.json.
#
# Every model answers with NUMERIC_DECODING (default greedy, VSI-Bench's protocol and the card's;
# expected_mra is the alternative) and with the keyframe window the trained export records
# (tiny-random, which records none, gets the same window).
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 RUN [EVAL_DIR]" >&2; exit 2; }
RUN="$(cd "$1" && pwd)"
EVAL="${2:-$RUN/eval}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
EVAL_SCENES="${EVAL_SCENES:-30}"
EVAL_SEED="${EVAL_SEED:-1000001}"   # held out: seeds from 1000000 up are never trained on
FRAMES="${FRAMES:-48}"
WIDTH="${WIDTH:-160}"
HEIGHT="${HEIGHT:-120}"
QUESTIONS_PER_FAMILY="${QUESTIONS_PER_FAMILY:-10}"
GEOMETRY_MODEL="${GEOMETRY_MODEL:-$RUN/vlm/export}"
NO_GEOMETRY_MODEL="${NO_GEOMETRY_MODEL:-$RUN/vlm_nogeom/export}"
spa3r() { "$PYTHON" -m spa3r_ros.cli.main "$@"; }

mkdir -p "$EVAL"
SCENES="$EVAL/scenes"
if [[ ! -f "$SCENES/.done" ]]; then
  rm -rf "$SCENES"
  spa3r world "$SCENES" --scenes "$EVAL_SCENES" --seed "$EVAL_SEED" --width "$WIDTH" \
    --height "$HEIGHT" --frames "$FRAMES" --no-progress
  printf '%s\0' "$SCENES"/scene_* | xargs -0 -P 2 -I SCENE \
    "$PYTHON" -m spa3r_ros.cli.main qa SCENE --out SCENE/qa.jsonl \
    --per-family "$QUESTIONS_PER_FAMILY" --seed 0 > /dev/null
  touch "$SCENES/.done"
fi
# One report per model; one that exists is kept when it was taken with these settings (decoding
# and window), else re-taken: delete it to re-take it anyway. The two trained models side by
# side, one thread each, then the random one.
NUMERIC_DECODING="${NUMERIC_DECODING:-greedy}"
COMMON=(--threads 1 --no-progress --numeric-decoding "$NUMERIC_DECODING")
WINDOW="$("$PYTHON" -c 'import sys
from spa3r_ros.models.bundle import trained_keyframe_window
print(trained_keyframe_window(sys.argv[1]) or "")' "$GEOMETRY_MODEL")"
RANDOM_WINDOW=(); [[ -n "$WINDOW" ]] && RANDOM_WINDOW=(--window "$WINDOW")
current() {  # report: was it taken with NUMERIC_DECODING and (when known) WINDOW?
  [[ -f "$1" ]] && "$PYTHON" - "$1" "$NUMERIC_DECODING" "$WINDOW" <<'PY'
import json, sys
model = json.load(open(sys.argv[1])).get('model', {})
window = sys.argv[3]
same = model.get('numeric_decoding') == sys.argv[2]
sys.exit(0 if same and (not window or model.get('keyframe_window') == int(window)) else 1)
PY
}
evaluate() {  # name, then spa3r eval model arguments
  local name="$1"; shift
  if ! current "$EVAL/$name.json"; then
    [[ -f "$EVAL/$name.json" ]] && echo "$EVAL/$name.json: other settings, re-taking it" >&2
    spa3r eval "$SCENES" "$@" --out "$EVAL/$name.json.tmp" "${COMMON[@]}" > "$EVAL/$name.txt"
    mv "$EVAL/$name.json.tmp" "$EVAL/$name.json"
  fi
}
evaluate geometry --checkpoint "$GEOMETRY_MODEL" &
GEOMETRY_PID=$!
evaluate no_geometry --checkpoint "$NO_GEOMETRY_MODEL" --no-geometry
wait "$GEOMETRY_PID"
evaluate tiny_random --preset tiny-random "${RANDOM_WINDOW[@]}"
"$PYTHON" -m spa3r_ros.tools.model_table --model "synthetic-small=$EVAL/geometry.json" \
  --model "no-geometry=$EVAL/no_geometry.json" --model "tiny-random=$EVAL/tiny_random.json" \
  --out "$EVAL/table.md" --json "$EVAL/targets.json"

#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# Does the model read the scene? Each scene's questions are asked over its own bag and over the
# next scene's bag (spa3r_ros/tools/scene_dependence.py); a model that answers from the question
# alone gives the same answers over both, and scores no better over the right room.
#
#   scripts/scene_dependence.sh RUN [OUT]
#
# RUN is a scripts/train_synthetic.sh folder (vlm/export and vlm_nogeom/export, or set
# GEOMETRY_MODEL / NO_GEOMETRY_MODEL). Writes OUT (default RUN/scene_dependence): the scenes, the
# swapped copy, four spa3r eval reports and comparison_{geometry,no_geometry}.txt.
#
# The scenes come from world seed 600000 (SEED): neither the recipe's training (0) nor its
# validation (500000) seeds, nor the evaluation's (1000000 up).
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 RUN [OUT]" >&2; exit 2; }
RUN="$(cd "$1" && pwd)"
OUT="${2:-$RUN/scene_dependence}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SCENES="${SCENES:-10}"
SEED="${SEED:-600000}"
FRAMES="${FRAMES:-48}"
WIDTH="${WIDTH:-160}"
HEIGHT="${HEIGHT:-120}"
QUESTIONS_PER_FAMILY="${QUESTIONS_PER_FAMILY:-10}"
GEOMETRY_MODEL="${GEOMETRY_MODEL:-$RUN/vlm/export}"
NO_GEOMETRY_MODEL="${NO_GEOMETRY_MODEL:-$RUN/vlm_nogeom/export}"
spa3r() { "$PYTHON" -m spa3r_ros.cli.main "$@"; }

rm -rf "$OUT"
mkdir -p "$OUT"
spa3r world "$OUT/own" --scenes "$SCENES" --seed "$SEED" --width "$WIDTH" --height "$HEIGHT" \
  --frames "$FRAMES" --no-progress
for scene in "$OUT"/own/scene_*; do
  spa3r qa "$scene" --out "$scene/qa.jsonl" --per-family "$QUESTIONS_PER_FAMILY" --seed 0 \
    > /dev/null
done
"$PYTHON" -m spa3r_ros.tools.scene_dependence swap "$OUT/own" "$OUT/other"
COMMON=(--threads 1 --no-progress)
compare() {  # name, then spa3r eval model arguments
  local name="$1"; shift
  for rooms in own other; do
    spa3r eval "$OUT/$rooms" "$@" --out "$OUT/$name.$rooms.json" "${COMMON[@]}" > /dev/null
  done
  "$PYTHON" -m spa3r_ros.tools.scene_dependence compare "$OUT/$name.own.json" \
    "$OUT/$name.other.json" "$OUT/other/swap.json" | tee "$OUT/comparison_$name.txt"
}
compare geometry --checkpoint "$GEOMETRY_MODEL"
compare no_geometry --checkpoint "$NO_GEOMETRY_MODEL" --no-geometry

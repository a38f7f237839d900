#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The README's test command: set up (idempotent), then run the whole suite inside a private
# network namespace with only loopback up, so DDS discovery cannot leave the machine.
# The whole suite runs once on ROS 2 Kilted (.venv); the ROS tier (tests marked `ros`: node,
# player, clients, colcon build) runs again on every other distribution in SPA3R_ROS_DISTROS
# (default "kilted jazzy"; Jazzy's venv is .venv-jazzy). Each run's header names its distribution.
# Extra arguments go to every pytest run (e.g. scripts/run_tests.sh test/unit -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# setup_env.sh's SPA3R_VENV names one venv for whichever distribution it sets up: exported here it
# would send Kilted and Jazzy into the same venv, while the runs below use .venv and .venv-<distro>.
unset SPA3R_VENV
read -r -a DISTROS <<< "${SPA3R_ROS_DISTROS:-kilted jazzy}"
[ "${DISTROS[0]:-}" = kilted ] || { echo "run_tests: SPA3R_ROS_DISTROS must start with kilted" >&2; exit 2; }
for distro in "${DISTROS[@]}"; do
  ROS_DISTRO="$distro" "$ROOT/scripts/setup_env.sh"
done

status=0
echo "[tests] ROS 2 kilted: the whole suite (.venv)"
"$ROOT/scripts/in_netns.sh" .venv/bin/python -m pytest "$@" || status=$?
for distro in "${DISTROS[@]:1}"; do
  echo "[tests] ROS 2 $distro: the ROS tier, pytest -m ros (.venv-$distro)"
  rc=0
  "$ROOT/scripts/in_netns.sh" ".venv-$distro/bin/python" -m pytest -m ros "$@" || rc=$?
  if [ "$rc" -eq 5 ] && [ "$#" -gt 0 ]; then
    # pytest's "no tests collected": the arguments chose no ROS test (e.g. test/unit).
    echo "[tests] ROS 2 $distro: these arguments select no ROS test"
    rc=0
  fi
  [ "$status" -ne 0 ] || status=$rc
done
exit "$status"

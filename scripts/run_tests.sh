#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The README's test command: set up (idempotent), then run the whole suite inside a private
# network namespace with only loopback up, so DDS discovery cannot leave the machine.
# Extra arguments go to pytest (e.g. scripts/run_tests.sh test/unit -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"

# Root gets a plain network namespace; other users a user namespace that maps them to root in it.
if [ "$(id -u)" -eq 0 ]; then ns=(unshare --net); else ns=(unshare --net --map-root-user); fi
cd "$ROOT"
exec "${ns[@]}" env -u RMW_IMPLEMENTATION -u _ROS_WHEELS_BOOTSTRAP_COMPLETE \
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PYTHONPATH="$ROOT" \
  sh -c 'ip link set lo up && exec .venv/bin/python -m pytest "$@"' pytest "$@"

#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# Run a command from the repository root inside a private network namespace with only loopback
# up, with localhost-only ROS discovery and the source tree on PYTHONPATH (the network rule for
# every ROS process on these machines). Used by run_tests.sh and run_demo.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Root gets a plain network namespace; other users a user namespace that maps them to root in it.
if [ "$(id -u)" -eq 0 ]; then ns=(unshare --net); else ns=(unshare --net --map-root-user); fi
cd "$ROOT"
exec "${ns[@]}" env -u RMW_IMPLEMENTATION -u _ROS_WHEELS_BOOTSTRAP_COMPLETE \
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PYTHONPATH="$ROOT" \
  sh -c 'ip link set lo up && exec "$@"' in_netns "$@"

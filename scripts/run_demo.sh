#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The README's main-job command: set up (idempotent), then run the end-to-end demo in a private
# network namespace (loopback only), like every ROS process on these machines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The demo runs in the Kilted .venv, whatever ROS_DISTRO a sourced ROS shell exports.
ROS_DISTRO=kilted "$ROOT/scripts/setup_env.sh"
exec "$ROOT/scripts/in_netns.sh" .venv/bin/python -m spa3r_ros.cli.main demo "$@"

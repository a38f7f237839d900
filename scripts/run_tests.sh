#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# The README's test command: set up (idempotent), then run the whole suite inside a private
# network namespace with only loopback up, so DDS discovery cannot leave the machine.
# Extra arguments go to pytest (e.g. scripts/run_tests.sh test/unit -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"

exec "$ROOT/scripts/in_netns.sh" .venv/bin/python -m pytest "$@"

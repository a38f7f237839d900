#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# Idempotent development set-up, for a machine without ROS (Debian 12 / Ubuntu, x86_64, CPython
# 3.10-3.13; the ROS 2 Kilted wheels exist for x86_64 only):
#   1. .venv/ inside the repository, with pinned ROS 2 Kilted wheels and the Python dependencies
#      (torch from the CPU wheel; see README "Installing elsewhere" for CUDA machines and robots);
#   2. the spa3r_ros interfaces (msg/, action/) built with CMake and installed into .venv, so that
#      rclpy finds them with no environment variables.
# Each step records a hash of its inputs in .venv and is skipped while they are unchanged, so a
# second run takes seconds. Nothing is written outside the repository.
# ROS_DISTRO=jazzy builds the same thing for ROS 2 Jazzy (LTS) in .venv-jazzy/ instead (the
# second distribution the ROS tests run on); unset or kilted means the Kilted .venv/ above.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One distribution per venv: Jazzy and Kilted wheels share their distribution names (ros-rclpy).
case "${ROS_DISTRO:-kilted}" in
  kilted)
    DISTRO=Kilted VENV="$ROOT/.venv" ROS_REQS="$ROOT/requirements/ros-kilted.txt"
    CONSTRAINTS="$ROOT/requirements/constraints.txt" BUILD="$ROOT/build/interfaces" ;;
  jazzy)
    DISTRO=Jazzy VENV="$ROOT/.venv-jazzy" ROS_REQS="$ROOT/requirements/ros-jazzy.txt"
    CONSTRAINTS="$ROOT/requirements/constraints-jazzy.txt" BUILD="$ROOT/build/interfaces-jazzy" ;;
  *)
    # A shell that sourced /opt/ros/<distro>/setup.bash exports its ROS_DISTRO (e.g. humble).
    echo "setup: ROS_DISTRO=$ROS_DISTRO has no wheels here; use kilted (default) or jazzy" \
      "(a shell that sourced /opt/ros/*/setup.bash sets ROS_DISTRO: unset it)" >&2
    exit 2 ;;
esac
PYTHON="${PYTHON:-python3.11}"
# A Python started from another ROS-wheel venv passes its bootstrap guard on; the guard would stop
# this venv's bootstrapper from setting LD_LIBRARY_PATH (ros2_on_pip.md, pitfall 4).
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE PYTHONPATH RMW_IMPLEMENTATION

log() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found (set PYTHON=python3.X)" >&2; exit 1; }
  log "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

REQS=("$ROS_REQS" "$ROOT"/requirements/ml.txt "$ROOT"/requirements/vlm.txt
      "$ROOT"/requirements/data.txt "$ROOT"/requirements/test.txt)
pip_hash="$(hash_of "${REQS[@]}" "$CONSTRAINTS")"
if [ "$(cat "$VENV/.spa3r_pip_hash" 2>/dev/null)" != "$pip_hash" ]; then
  log "installing pinned Python packages (ROS 2 $DISTRO wheels, torch CPU, transformers, rosbags, test tools)"
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" \
    -c "$CONSTRAINTS"
  echo "$pip_hash" > "$VENV/.spa3r_pip_hash"
else
  log "Python packages up to date"
fi

# The interfaces depend on the interface files, the build files and the installed ROS packages.
iface_hash="$(hash_of "$ROOT"/msg/*.msg "$ROOT"/action/*.action "$ROOT"/srv/*.srv "$ROOT/CMakeLists.txt" \
  "$ROOT/package.xml" "$ROOT/cmake/ros_wheels_fix.cmake" "$VENV/.spa3r_pip_hash")"
if [ "$(cat "$VENV/.spa3r_iface_hash" 2>/dev/null)" != "$iface_hash" ]; then
  log "building the spa3r_ros interfaces into $VENV (log: $BUILD/build.log)"
  rm -rf "$BUILD" && mkdir -p "$BUILD"
  (
    export PATH="$VENV/bin:$PATH" CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DSPA3R_INSTALL_PYTHON_PACKAGE=OFF -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_FIND_VIRTUALENV=ONLY \
      -DCMAKE_PROJECT_INCLUDE="$ROOT/cmake/ros_wheels_fix.cmake"
    cmake --build "$BUILD" -j"$(nproc)"
    cmake --install "$BUILD"
  ) > "$BUILD/build.log" 2>&1 || { tail -n 40 "$BUILD/build.log" >&2; echo "setup: interface build failed" >&2; exit 1; }
  echo "$iface_hash" > "$VENV/.spa3r_iface_hash"
else
  log "interfaces up to date"
fi

# The generated Python package in site-packages holds msg/, srv/ and action/ only; the rest of spa3r_ros
# is used from this source tree (scripts put it first on PYTHONPATH).
PYTHONPATH="$ROOT" "$VENV/bin/python" -c 'import rclpy, spa3r_ros.action, spa3r_ros.msg, spa3r_ros.srv' \
  || { echo "setup: the built interfaces do not import" >&2; exit 1; }
log "ready: $VENV"

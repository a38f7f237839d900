#!/usr/bin/env bash
# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
#
# Idempotent development set-up, for a machine without ROS (Debian 12 / Ubuntu, x86_64, CPython
# 3.11-3.13; the ROS 2 Kilted wheels exist for x86_64 only):
#   1. .venv/ inside the repository, with pinned ROS 2 Kilted wheels and the Python dependencies
#      (torch from the CPU wheel; see README "Installing elsewhere" for CUDA machines and robots);
#   2. the spa3r_ros interfaces (msg/, srv/, action/) built with CMake and installed into .venv, so
#      that rclpy finds them with no environment variables;
#   3. this package installed into .venv in editable mode, so that after `source .venv/bin/activate`
#      the commands `spa3r`, `spa3r_node` and `spa3r_dump_params` run the source tree from any
#      folder, with no PYTHONPATH.
# Each step records a hash of its inputs in .venv and is skipped while they are unchanged, so a
# second run takes seconds. Nothing is written outside the repository (or SPA3R_VENV).
# ROS_DISTRO=jazzy builds the same thing for ROS 2 Jazzy (LTS) in .venv-jazzy/ instead (the
# second distribution the ROS tests run on); unset or kilted means the Kilted .venv/ above.
#
# SPA3R_VENV=/path/to/venv sets up that virtual environment instead (a scratch copy, for trying
# this script without touching .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One distribution per venv: Jazzy and Kilted wheels share their distribution names (ros-rclpy).
case "${ROS_DISTRO:-kilted}" in
  kilted)
    DISTRO=Kilted VENV="${SPA3R_VENV:-$ROOT/.venv}" ROS_REQS="$ROOT/requirements/ros-kilted.txt"
    CONSTRAINTS="$ROOT/requirements/constraints.txt" BUILD="$ROOT/build/interfaces" ;;
  jazzy)
    DISTRO=Jazzy VENV="${SPA3R_VENV:-$ROOT/.venv-jazzy}" ROS_REQS="$ROOT/requirements/ros-jazzy.txt"
    CONSTRAINTS="$ROOT/requirements/constraints-jazzy.txt" BUILD="$ROOT/build/interfaces-jazzy" ;;
  *)
    # A shell that sourced /opt/ros/<distro>/setup.bash exports its ROS_DISTRO (e.g. humble).
    echo "setup: ROS_DISTRO=$ROS_DISTRO has no wheels here; use kilted (default) or jazzy" \
      "(a shell that sourced /opt/ros/*/setup.bash sets ROS_DISTRO: unset it)" >&2
    exit 2 ;;
esac
BUILD="$BUILD${SPA3R_VENV:+_$(basename "$VENV")}"
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
      "$ROOT"/requirements/data.txt "$ROOT"/requirements/train.txt "$ROOT"/requirements/test.txt)
NO_DEPS_REQS="$ROOT/requirements/reference-eval.txt"
pip_hash="$(hash_of "${REQS[@]}" "$NO_DEPS_REQS" "$CONSTRAINTS")"
if [ "$(cat "$VENV/.spa3r_pip_hash" 2>/dev/null)" != "$pip_hash" ]; then
  log "installing pinned Python packages (ROS 2 $DISTRO wheels, torch CPU, transformers, rosbags, test tools)"
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" \
    -c "$CONSTRAINTS"
  # Reference code whose declared dependencies would break the pins (torch): only what it imports
  # is installed, through test.txt.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$NO_DEPS_REQS" \
    -c "$CONSTRAINTS"
  echo "$pip_hash" > "$VENV/.spa3r_pip_hash"
else
  log "Python packages up to date"
fi

# The interfaces depend on the interface files, the build files and the installed ROS packages.
iface_hash="$(hash_of "$ROOT"/msg/*.msg "$ROOT"/action/*.action "$ROOT"/srv/*.srv "$ROOT/CMakeLists.txt" \
  "$ROOT/package.xml" "$ROOT/cmake/ros_wheels_fix.cmake" "$ROOT/spa3r_ros/__init__.py" \
  "$VENV/.spa3r_pip_hash")"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
if [ "$(cat "$VENV/.spa3r_iface_hash" 2>/dev/null)" != "$iface_hash" ] || [ ! -d "$SITE/spa3r_ros/msg" ]; then
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

# The editable install: a .pth file puts this repository on sys.path (compat mode: setuptools' default
# finder would be consulted after site-packages/spa3r_ros, the interfaces' half, and miss the rest)
# and the console scripts of setup.py go into $VENV/bin. CMake installed spa3r_ros/__init__.py
# into site-packages, so whichever half Python finds first, extend_path joins both (see CMakeLists).
# rosidl's Python generator also installs an egg-info that claims the whole spa3r_ros folder; pip
# would take it for an older install of this package and delete the interfaces with it when the
# editable install replaces it. The interfaces need no distribution metadata.
rm -rf "$SITE"/spa3r_ros-*.egg-info
dev_hash="$(hash_of "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/spa3r_ros/__init__.py" "$VENV/.spa3r_iface_hash")"
if [ "$(cat "$VENV/.spa3r_dev_hash" 2>/dev/null)" != "$dev_hash" ] || [ ! -x "$VENV/bin/spa3r" ]; then
  log "installing spa3r_ros into $VENV (editable: the commands run this source tree)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation --no-index --config-settings editable_mode=compat -e "$ROOT"
  echo "$dev_hash" > "$VENV/.spa3r_dev_hash"
else
  log "editable install up to date"
fi

# Both halves import from outside the repository, with no PYTHONPATH, as an activated shell has it.
(cd / && env -u PYTHONPATH "$VENV/bin/python" -c \
  'import rclpy, spa3r_ros.action, spa3r_ros.msg, spa3r_ros.srv, spa3r_ros.cli.main') \
  || { echo "setup: the built interfaces or the editable install do not import" >&2; exit 1; }
log "ready: $VENV (source $VENV/bin/activate for the spa3r and spa3r_node commands)"

# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
"""Write requirements/constraints.txt from the working .venv (run with .venv/bin/python).

Run with .venv-jazzy/bin/python it writes requirements/constraints-jazzy.txt instead (the venv
holds the ros-jazzy-* meta-packages). The ROS wheels carry egg-info "phantom" distributions
(rclpy, std_msgs, ...) that do not exist on PyPI; they are left out, as are pip/setuptools/wheel.
"""

import importlib.metadata
from pathlib import Path

HEADER = """\
# Exact versions of everything scripts/setup_env.sh installs, frozen from a working environment.
# Regenerate with: .venv/bin/python scripts/freeze_constraints.py
"""
JAZZY_HEADER = """\
# Exact versions of everything ROS_DISTRO=jazzy scripts/setup_env.sh installs into .venv-jazzy,
# frozen from a working environment. The packages that are not ROS's carry the pins of
# constraints.txt (test/unit/test_requirements_distros.py checks it).
# Regenerate with: .venv-jazzy/bin/python scripts/freeze_constraints.py
"""


def main() -> None:
    rows = set()
    for dist in importlib.metadata.distributions():
        if str(getattr(dist, '_path', '')).endswith('.egg-info'):
            continue
        name = dist.metadata['Name']
        # This package itself is installed editable from the source tree (setup_env.sh): no pin.
        if name.lower() in {'pip', 'setuptools', 'wheel', 'spa3r_ros', 'spa3r-ros'}:
            continue
        rows.add(f'{name}=={dist.version}')
    jazzy = any(row.lower().startswith('ros-jazzy-rclpy==') for row in rows)
    out = Path(__file__).resolve().parents[1] / 'requirements'
    out /= 'constraints-jazzy.txt' if jazzy else 'constraints.txt'
    header = JAZZY_HEADER if jazzy else HEADER
    out.write_text(header + '\n'.join(sorted(rows, key=str.lower)) + '\n')
    print(f'wrote {len(rows)} pins to {out}')


if __name__ == '__main__':
    main()

# Copyright 2026 The spa3r_ros Authors. Licensed under the Apache License, Version 2.0.
"""pip installation of the ROS-free spa3r_ros library (training and evaluation machines).

On ROS machines, colcon builds the package through CMakeLists.txt (interfaces + this Python package
+ executables + launch/config/model assets). Here, extras carry the heavy dependencies:
``pip install .[ml,vlm,data]``.
"""

from pathlib import Path
import re

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
INIT = (ROOT / 'spa3r_ros' / '__init__.py').read_text()
VERSION = re.search(r"__version__ = '([^']+)'", INIT)[1]


def requirements(name: str) -> list[str]:
    lines = (ROOT / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines if line.split('#')[0].strip()]


def model_folders() -> list[tuple[str, list[str]]]:
    """data_files entries of every folder under models/ (the trained presets' files)."""
    entries = []
    for folder in sorted(p for p in (ROOT / 'models').rglob('*') if p.is_dir()):
        files = sorted(str(f.relative_to(ROOT)) for f in folder.iterdir() if f.is_file())
        if files:
            entries.append((f'share/spa3r_ros/{folder.relative_to(ROOT)}', files))
    return entries


setup(
    name='spa3r_ros',
    version=VERSION,
    description='Spatial questions about camera streams: Spa3R + Spa3-VLM, for ROS 2',
    license='Apache-2.0',
    packages=find_packages(include=['spa3r_ros', 'spa3r_ros.*']),
    package_data={'spa3r_ros': ['py.typed']},
    # The preset registry and the trained presets' folders, where spa3r_ros.models.bundle looks
    # for them in a pip install.
    data_files=[('share/spa3r_ros/models', ['models/registry.yaml', 'models/README.md'])]
    + model_folders(),
    python_requires='>=3.10',
    install_requires=['numpy>=1.26', 'pyyaml>=6', 'pillow>=10'],
    extras_require={
        'ml': requirements('ml'),
        'vlm': requirements('vlm'),
        'data': requirements('data'),
        'test': requirements('test'),
    },
    entry_points={
        'console_scripts': [
            'spa3r = spa3r_ros.cli.main:main',
            'spa3r_node = spa3r_ros.cli.node:main',
            'spa3r_dump_params = spa3r_ros.cli.dump_params:main',
        ],
    },
)

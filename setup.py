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


setup(
    name='spa3r_ros',
    version=VERSION,
    description='Spatial questions about camera streams: Spa3R + Spa3-VLM, for ROS 2',
    license='Apache-2.0',
    packages=find_packages(include=['spa3r_ros', 'spa3r_ros.*']),
    package_data={'spa3r_ros': ['py.typed']},
    # The preset registry, where spa3r_ros.models.bundle looks for it in a pip install.
    data_files=[('share/spa3r_ros/models', ['models/registry.yaml', 'models/README.md'])],
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

# Copyright 2026 The spa3r_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""The one place where rclpy differs between ROS 2 Jazzy (rclpy 7.1) and Kilted (rclpy 9.1).

The node and the tools use what this module exports instead of testing versions themselves. Each
difference names the rclpy release that introduced it (rclpy's CHANGELOG): Jazzy ships rclpy
7.1.x and Kilted 9.1.x, so a change made in 7.2 to 9.1 is in Kilted and not in Jazzy. Found by
running the ROS tests on both and by comparing rclpy's sources of both wheel sets.

Differences that this project does not touch are listed for whoever starts to use them:
``MultiThreadedExecutor.shutdown()`` joins its worker threads only from 7.6.0; timer callbacks
may take a ``TimerInfo`` argument from 7.6.0; ``rclpy.init()`` is a context manager from 7.4.0;
``Node.create_subscription(content_filter_options=...)`` and action introspection
(``ActionServer.configure_introspection``) are Kilted-only; from 8.0.0 a lifecycle transition
that rcl refuses returns ``ERROR`` instead of raising ``RCLError``; from 7.4.0 the top-level
``rclpy.try_shutdown()`` also uninstalls rclpy's signal handlers and takes
``uninstall_handlers`` (the node calls it only as its process exits, where that does not matter).
"""

import importlib.metadata
import os

# rclpy's major version in each ROS 2 distribution (the rclpy of each release branch).
_DISTRO_BY_RCLPY_MAJOR = {3: 'humble', 4: 'iron', 7: 'jazzy', 9: 'kilted'}
# The distributions this project tests (scripts/run_tests.sh runs the ROS tier on each).
TESTED_DISTROS = ('jazzy', 'kilted')

# rclpy 7.6.0 (Kilted) cut ActionServer's default result_timeout from 900 s to 10 s: how long a
# finished goal's result stays available to a client that asks for it late. Passed explicitly so
# that both distributions keep results equally long (clients ask for the result on acceptance).
ACTION_RESULT_TIMEOUT_SEC = 10


def rclpy_version() -> str:
    """The installed rclpy's version, e.g. ``'7.1.6'`` (Jazzy) or ``'9.1.2'`` (Kilted)."""
    try:
        return importlib.metadata.version('rclpy')
    except importlib.metadata.PackageNotFoundError:
        # rclpy built from source without its egg-info: the workspace names the distribution.
        return 'unknown'


def ros_distribution() -> str:
    """The ROS 2 distribution of the installed rclpy (``'jazzy'``, ``'kilted'``, ...).

    Derived from rclpy's major version, not from ``$ROS_DISTRO``, which a shell may carry over
    from another installation; ``$ROS_DISTRO`` is used only when rclpy's version is unknown.
    """
    version = rclpy_version()
    major = version.split('.', 1)[0]
    if major.isdigit() and int(major) in _DISTRO_BY_RCLPY_MAJOR:
        return _DISTRO_BY_RCLPY_MAJOR[int(major)]
    return os.environ.get('ROS_DISTRO', f'unknown (rclpy {version})')


def describe() -> str:
    """One line naming the distribution and rclpy, for logs and test headers."""
    return f'ROS 2 {ros_distribution()} (rclpy {rclpy_version()})'


def spin_until_shutdown(executor) -> None:
    """``executor.spin()`` that ends quietly when SIGINT shuts the default context down mid-spin.

    rclpy's signal handler shuts the context down from another thread. An executor caught
    between its shutdown check and building its next wait set then raises ``RCLError`` ("the
    given context is not valid") instead of ``ExternalShutdownException``; seen on Jazzy (rclpy
    7.1) as an exit status of 1 after a clean SIGINT. An ``RCLError`` while the context is still
    valid is a real error and is raised.
    """
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation

    try:
        executor.spin()
    except rclpy_implementation.RCLError:
        if rclpy.ok():
            raise

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


"""Forward the core library's ``logging`` records to a node's rclpy logger (and so to /rosout)."""

import logging

from rclpy.node import Node


class RclpyHandler(logging.Handler):
    """A logging handler that writes records to ``node.get_logger()`` at the matching severity."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f'[{record.name}] {self.format(record)}'
            if record.levelno >= logging.ERROR:
                self._logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._logger.warning(text)
            elif record.levelno >= logging.INFO:
                self._logger.info(text)
            else:
                self._logger.debug(text)
        except Exception:  # a logging failure must never break the caller
            self.handleError(record)


def forward_core_logs(node: Node, level: int = logging.INFO) -> RclpyHandler:
    """Attach a handler for every ``spa3r_ros.*`` logger; :func:`stop_forwarding` undoes it."""
    handler = RclpyHandler(node)
    core = logging.getLogger('spa3r_ros')
    core.addHandler(handler)
    core.setLevel(level)
    core.propagate = False
    return handler


def stop_forwarding(handler: RclpyHandler) -> None:
    """Detach ``handler``; with no node forwarding any more, records propagate again."""
    core = logging.getLogger('spa3r_ros')
    core.removeHandler(handler)
    if not any(isinstance(h, RclpyHandler) for h in core.handlers):
        core.propagate = True

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

"""One place where every node callback is kept from letting an exception reach the executor.

An exception that leaves a timer, subscription, service, action or parameter callback ends
``executor.spin()`` and with it the node process. :meth:`CallbackGuard.wrap` returns the callback
wrapped so that any ``Exception`` is counted (``SceneStatus.callback_errors``), logged with its
traceback (at most once per ``LOG_INTERVAL_SEC`` per callback; the skipped ones are counted in the
next message) and turned into the callback's fallback value (a failed service response, a rejected
goal, ...). ROS-free, so it is tested without processes.
"""

from collections.abc import Callable
import functools
import logging
import threading
import time
import traceback
from typing import Any

# Shortest time between two log messages about the same callback (s).
LOG_INTERVAL_SEC = 5.0

Fallback = Callable[..., Any]


class CallbackGuard:
    """Wraps callbacks: exceptions are counted, logged (throttled) and replaced by a fallback.

    Args:
        log_error: receives the text of each (throttled) report, e.g. ``node.get_logger().error``.
        clock: monotonic seconds (for the throttle).
    """

    def __init__(
        self,
        log_error: Callable[[str], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log_error = log_error
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    @property
    def errors(self) -> int:
        """Exceptions caught so far, in all callbacks."""
        with self._lock:
            return self._count

    def wrap(self, name: str, callback: Callable[..., Any], fallback: Fallback | None = None):
        """The callback, guarded.

        Args:
            name: what the callback is, for the log (``'status timer'``, ``'~/save_scene'``).
            callback: the callback.
            fallback: called as ``fallback(error, *args, **kwargs)`` after an exception; its value
                is returned instead. None returns None. An exception in the fallback is caught
                too (and None returned).
        """

        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception as err:
                self.report(name, err)
                if fallback is None:
                    return None
                try:
                    return fallback(err, *args, **kwargs)
                except Exception as fallback_err:
                    self.report(f'{name} (fallback)', fallback_err)
                    return None

        return guarded

    def report(self, name: str, err: BaseException) -> None:
        """Count an exception caught in ``name`` and log it unless logged less than 5 s ago."""
        now = self._clock()
        with self._lock:
            self._count += 1
            last = self._last_logged.get(name)
            if last is not None and now - last < LOG_INTERVAL_SEC:
                self._suppressed[name] = self._suppressed.get(name, 0) + 1
                return
            self._last_logged[name] = now
            skipped = self._suppressed.pop(name, 0)
        # The stack without Python's 'Traceback' header: logs are searched for that word to find
        # exceptions nobody caught.
        where = ''.join(traceback.format_tb(err.__traceback__))
        more = f' ({skipped} more since the last report)' if skipped else ''
        try:
            self._log_error(
                f'{name} raised {type(err).__name__}: {err}{more}; the node goes on. At:\n{where}'
            )
        except Exception:  # logging must never be the thing that ends the node
            logging.getLogger(__name__).exception('could not log a callback error')

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

"""Run logs on rank 0: TensorBoard scalars and a plain-text line per interval.

Text lines go to this module's logger (the entry point decides where logging goes) and are also
appended to ``RUN/train.log`` so a run folder documents itself. TensorBoard files go to
``RUN/tensorboard``; without the ``tensorboard`` package only the text log is written.
"""

from collections.abc import Mapping
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

LOG_FILE = 'train.log'
TB_DIR = 'tensorboard'


class RunLogger:
    """Writes scalars and lines for one run (a no-op object on ranks other than 0).

    Args:
        run_dir: the run folder.
        enabled: False on ranks that must not write.
    """

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.enabled = enabled
        self._writer = None
        self._file = None
        if not enabled:
            return
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(run_dir / LOG_FILE, 'a', encoding='utf-8')
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in requirements/train.txt; keep text logs without it
            logger.warning('tensorboard is not installed: only %s is written', LOG_FILE)
        else:
            self._writer = SummaryWriter(str(run_dir / TB_DIR))

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = '') -> None:
        """Add scalars at ``step`` (names like ``train/geo/l1``)."""
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(f'{prefix}{name}', float(value), step)

    def line(self, text: str) -> None:
        """Log one line (INFO) and append it to ``train.log``."""
        if not self.enabled:
            return
        logger.info('%s', text)
        if self._file is not None:
            self._file.write(text + '\n')
            self._file.flush()

    def close(self) -> None:
        """Flush and close the files."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def format_metrics(values: Mapping[str, float]) -> str:
    """``geo/l1=0.1234 lr=2.00e-03`` style text for a log line."""
    parts = []
    for name, value in values.items():
        if name == 'lr':
            parts.append(f'{name}={value:.2e}')
        else:
            parts.append(f'{name}={value:.4g}')
    return ' '.join(parts)

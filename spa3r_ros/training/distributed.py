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

"""One process or many under ``torchrun``: process group, device, all-reduce helpers.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them the run is a single
process and nothing here touches torch.distributed.
"""

from dataclasses import dataclass
import logging
import os

import torch
import torch.distributed as dist

from spa3r_ros.configs.train import DistributedConfig
from spa3r_ros.core.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    Attributes:
        rank: global rank (0 in a single process).
        local_rank: rank on this machine.
        world_size: number of processes.
        device: the device this rank trains on.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self) -> bool:
        """True on the rank that writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is in use."""
        return self.world_size > 1


def resolve_train_device(spec: str, local_rank: int) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is there, else the CPU.

    Raises:
        ConfigError: cuda asked for without a CUDA device.
    """
    if spec == 'cpu' or (spec == 'auto' and not torch.cuda.is_available()):
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise ConfigError("run.device 'cuda': no CUDA device is available")
    return torch.device('cuda', local_rank % torch.cuda.device_count())


def init_distributed(config: DistributedConfig, device_spec: str = 'auto') -> DistInfo:
    """Join the process group when started by ``torchrun`` (else a single-process DistInfo).

    Args:
        config: backend and strategy.
        device_spec: run.device.

    Returns:
        This process's :class:`DistInfo`.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_train_device(device_spec, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = config.backend
        if backend == 'auto':
            backend = 'nccl' if device.type == 'cuda' else 'gloo'
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        logger.info('rank %d/%d joined (%s) on %s', rank, world_size, backend, device)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a float tensor over ranks (identity in one process); returns a CPU float64 copy."""
    out = values.detach().to(info.device, torch.float64)
    if info.distributed:
        # gloo reduces float64 on CPU; NCCL on the rank's GPU.
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.cpu()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in one process)."""
    if info.distributed:
        dist.barrier()

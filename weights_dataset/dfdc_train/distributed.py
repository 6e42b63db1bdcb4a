"""Several processes, one per GPU (or CPU process), as ``torchrun`` starts them.

``torchrun --nproc_per_node N -m dfdc_train.train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK;
this module turns them into a ``Distributed`` context: the process group (NCCL on GPUs, gloo on
CPUs), this process's device, and the few collective operations training needs. Without
torchrun it is a world of one and every operation is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from dfdc_infer.device import resolve_device


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, name: str) -> torch.device:
        """``auto`` -> this process's own GPU (``cuda:LOCAL_RANK``) when there is one, else CPU."""
        device = resolve_device(name)
        if device.type == "cuda" and device.index is None and self.active:
            return torch.device("cuda", self.local_rank)
        return device

    def gather(self, values: Any) -> list[Any]:
        """Every process's ``values``, in rank order (a list of one without torchrun)."""
        if not self.active:
            return [values]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, values)
        return gathered

    def mean(self, value: float) -> float:
        """The mean of ``value`` over all processes."""
        return sum(self.gather(value)) / self.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def start(device_name: str) -> Distributed:
    """Join the process group when started by torchrun (NCCL if this process gets a GPU, else gloo)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    context = Distributed(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if context.active and not dist.is_initialized():
        device = context.device(device_name)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return context


def stop(context: Distributed) -> None:
    """Leave the process group (lets torchrun end cleanly)."""
    if context.active and dist.is_initialized():
        dist.destroy_process_group()

"""Several training processes on one machine under torch.distributed (DistributedDataParallel):
gloo on the CPU, NCCL on GPUs; the same code runs under ``torchrun``, which starts the ranks."""

from __future__ import annotations

import socket
from collections.abc import Callable

import torch
from torch import nn

from lutfarm.errors import LutfarmError


class DistributedError(LutfarmError, ValueError):
    """A distributed run this machine cannot start."""


def rank_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def default_device(device: str | None) -> str:
    """``device``, else CUDA when present, else the CPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def backend(device: str | None) -> str:
    return "nccl" if default_device(device).startswith("cuda") else "gloo"


def rank_device(device: str | None) -> str:
    """This rank's device: its own GPU when training on CUDA."""
    device = default_device(device)
    rank, world = rank_world()
    if device == "cuda" and world > 1:
        return f"cuda:{rank % torch.cuda.device_count()}"
    return device


def wrap(net: nn.Module, device: str, find_unused: bool = False) -> nn.Module:
    """``net`` under DistributedDataParallel when there are several ranks, else itself."""
    if rank_world()[1] == 1:
        return net
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids,
                                               find_unused_parameters=find_unused)


def average_buffers(net: nn.Module) -> None:
    """Batch-norm statistics averaged over the ranks (DDP keeps each rank's last ones), so
    every rank ends with the same network."""
    _, world = rank_world()
    if world == 1:
        return
    for b in net.buffers():
        if b.is_floating_point():
            torch.distributed.all_reduce(b)
            b /= world


def _rank_main(rank: int, world: int, port: int, device: str | None, fn: Callable,
               args: tuple) -> None:
    torch.distributed.init_process_group(backend(device), init_method=f"tcp://127.0.0.1:{port}",
                                         rank=rank, world_size=world)
    try:
        fn(*args)
    finally:
        torch.distributed.destroy_process_group()


def spawn(fn: Callable, args: tuple, nproc: int, device: str | None = None) -> None:
    """Run ``fn(*args)`` in ``nproc`` fresh processes that form one process group."""
    import torch.multiprocessing as mp

    gpus = torch.cuda.device_count()
    if backend(device) == "nccl" and nproc > gpus:
        # NCCL refuses two ranks on one GPU ("Duplicate GPU detected"), measured on an H100
        raise DistributedError(f"--nproc {nproc} on CUDA needs {nproc} GPUs (one per NCCL rank); "
                               f"this machine has {gpus}: use --nproc {max(gpus, 1)} or "
                               f"--device cpu (gloo)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, (nproc, port, device, fn, args), nprocs=nproc, join=True)

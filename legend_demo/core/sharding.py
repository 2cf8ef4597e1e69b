"""Running a batch command as several processes: `torchrun` / `accelerate launch` (one GPU per process).

The launcher sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR / MASTER_PORT). Process `rank` takes every item
whose index i satisfies i mod WORLD_SIZE == rank (round robin, so each shard gets a mix of cases), binds
cuda:LOCAL_RANK when CUDA is present, and sends its results to rank 0 over a gloo process group (CPU tensors and
pickled objects only; no NCCL needed, and it works across nodes without a shared file system). Rank 0 orders the
merged results by item index, so the merged output is the same whatever the number of processes. Without
WORLD_SIZE (or with 1) everything runs in this process and nothing is initialised.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, TypeVar

T = TypeVar("T")

GROUP_TIMEOUT = datetime.timedelta(hours=12)  # a rank may wait this long for slower ranks at the merge


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number (set by torchrun / accelerate launch)") from None


@dataclass(frozen=True)
class Shard:
    """This process's place among the launched processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def take(self, items: Iterable[T]) -> list[tuple[int, T]]:
        """(index, item) for this process's items: index mod world_size == rank."""
        return [(i, item) for i, item in enumerate(items) if i % self.world_size == self.rank]

    def label(self) -> str:
        return f"rank {self.rank}/{self.world_size}" if self.distributed else "single process"


def current(env: Mapping[str, str] | None = None) -> Shard:
    """The shard from RANK / WORLD_SIZE / LOCAL_RANK; ValueError for inconsistent values."""
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local = _env_int(env, "LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK={rank}, LOCAL_RANK={local}, WORLD_SIZE={world} are inconsistent: need 0 ≤ RANK < WORLD_SIZE")
    return Shard(rank, world, local)


def start(shard: Shard) -> None:
    """Join the process group (gloo) and bind this process's GPU; nothing for a single process."""
    if not shard.distributed:
        return
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        if shard.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={shard.local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                             "start at most one process per GPU (--nproc-per-node)")
        torch.cuda.set_device(shard.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world_size, timeout=GROUP_TIMEOUT)


def gather(shard: Shard, obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None on the other ranks); [obj] for a single process."""
    if not shard.distributed:
        return [obj]
    import torch.distributed as dist

    received: list[Any] | None = [None] * shard.world_size if shard.is_main else None
    dist.gather_object(obj, received, dst=0)
    return received


def barrier(shard: Shard) -> None:
    """Wait until every rank gets here."""
    if shard.distributed:
        import torch.distributed as dist

        dist.barrier()


def finish(shard: Shard) -> None:
    """Leave the process group (so the launcher sees a clean exit)."""
    if shard.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def merge_indexed(parts: list[list[tuple[int, T]]]) -> list[T]:
    """Items of every shard ordered by their global index; ValueError on a duplicated index."""
    indexed = [pair for part in parts for pair in part]
    indices = [i for i, _ in indexed]
    if len(set(indices)) != len(indices):
        raise ValueError("two shards returned the same item: were the processes started with different inputs?")
    return [item for _, item in sorted(indexed, key=lambda pair: pair[0])]

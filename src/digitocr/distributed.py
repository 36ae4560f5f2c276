"""Training on several processes or machines with ``torchrun``: one process per rank, DistributedDataParallel.

Every helper here is the identity in a plain single process, so the training code calls them unconditionally
and ``digitocr train`` without torchrun runs exactly as before. Under torchrun: gloo on CPU, nccl on GPU; each
rank takes its shard of every epoch's permutation; metrics are reduced across ranks; only rank 0 prints and saves.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import math
import os
import re

import numpy as np
import torch
from torch import nn

from digitocr.errors import ConfigError, RankLost

# torchrun (and torch.distributed.launch) set these in every worker; their presence means "launched as a rank".
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# How long a rank waits in a collective (DDP's gradient all-reduce, a metric reduction) for the others, instead of
# gloo's 30 minutes. A rank that dies closes its connections and the others stop at their next all-reduce (tested);
# this bounds the wait for one that goes silent (host frozen or powered off, cable cut). The longest honest wait is the
# first collective, while a node that had no MNIST yet downloads it (11 MB, mirrors tried in turn): 5 minutes.
PEER_TIMEOUT = datetime.timedelta(minutes=5)
PEER_TIMEOUT_VARIABLE = "DIGITOCR_PEER_TIMEOUT"  # seconds, for another limit (a slow network, a test)


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that prints, writes the model file and the report."""
    if active():
        return rank() == 0
    return int(os.environ.get("RANK", "0")) == 0  # before init, torchrun's variable already tells


def init_from_env(device: torch.device) -> torch.device:
    """Join torchrun's process group once (gloo on CPU, nccl on CUDA) and return this rank's device.

    Outside torchrun it returns ``device`` unchanged. On CUDA each rank gets the GPU of its LOCAL_RANK.
    """
    if not launched_by_torchrun() or not torch.distributed.is_available():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(
            backend=backend, device_id=device if device.type == "cuda" else None, timeout=peer_timeout()
        )
        atexit.register(_leave)
    return device


def peer_timeout() -> datetime.timedelta:
    """PEER_TIMEOUT, or the seconds in $DIGITOCR_PEER_TIMEOUT."""
    text = os.environ.get(PEER_TIMEOUT_VARIABLE)
    if text is None:
        return PEER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ConfigError(f"{PEER_TIMEOUT_VARIABLE} must be a positive number of seconds, got {text!r}")
    return datetime.timedelta(seconds=seconds)


@contextlib.contextmanager
def peers_watched():
    """Runs the block (or, as a decorator, the function); when a collective fails because another rank died, left
    or went silent for the peer timeout, raises RankLost with the backend's reason in one line instead of a C++
    traceback. Errors outside an active process group, or of other kinds, pass through unchanged."""
    try:
        yield
    except RuntimeError as error:  # torch.distributed.DistError is one; DDP's backward raises gloo's as a plain one
        if not active() or not (isinstance(error, torch.distributed.DistError) or "/gloo/" in str(error)):
            raise
        raise RankLost(
            f"training stopped: another rank failed or left (this is rank {rank()} of {world_size()}): "
            f"{_reason(str(error))}"
        ) from error


def _reason(message: str) -> str:
    """The first sentence of a backend error, without its source location: '[.../pair.cc:545] Read error
    [10.213.77.2]:3253: Connection reset by peer. This is typically caused by...' -> 'Read error ... by peer'."""
    first_line = message.strip().splitlines()[0] if message.strip() else "no reason given"
    without_location = re.sub(r"^\[[^\]]*\.\w+:\d+\]\s*", "", first_line)
    return re.split(r"(?<=[a-z0-9])\. ", without_location, maxsplit=1)[0].rstrip(".")


def _leave() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(model: nn.Module) -> nn.Module:
    """``model`` inside DistributedDataParallel when several ranks train, else ``model`` itself.

    DDP broadcasts rank 0's initial weights and averages gradients in backward, so the ranks stay identical.
    """
    if not active():
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under a DDP wrapper: for evaluation, where ranks must not wait for each other."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def local_batch_size(batch_size: int) -> int:
    """Each rank's share of the global batch, so steps per epoch and the learning-rate schedule do not change."""
    return max(batch_size // world_size(), 1)


def shard_size(count: int) -> int:
    """Items per rank after ``shard``: every rank gets the same number, so all take the same number of steps."""
    return count // world_size()


def shard(order: torch.Tensor, drop_remainder: bool = True) -> torch.Tensor:
    """This rank's part of an index permutation: every world_size-th item from its rank on.

    Training drops the few leftovers so the ranks' step counts match (DDP would wait forever otherwise);
    evaluation keeps them (``drop_remainder=False``) so every image is counted exactly once.
    """
    if not active():
        return order
    end = shard_size(len(order)) * world_size() if drop_remainder else len(order)
    return order[rank() : end : world_size()]


def all_reduce_sum(*values: float) -> list[float]:
    """Sums of each value over all ranks (float64, on the CPU or this rank's GPU as the backend needs)."""
    if not active():
        return list(values)
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if torch.distributed.get_backend() == "nccl"
        else torch.device("cpu")
    )
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def mean_over_ranks(value: float) -> float:
    return all_reduce_sum(value)[0] / world_size()


def gather(array: np.ndarray) -> np.ndarray:
    """The ranks' 1-d arrays concatenated in rank order (lengths may differ); ``array`` itself when alone."""
    if not active():
        return array
    parts: list = [None] * world_size()
    torch.distributed.all_gather_object(parts, array)
    return np.concatenate(parts)

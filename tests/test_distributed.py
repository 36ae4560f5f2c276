"""Training on several processes: the helpers are the identity alone, and real torchrun ranks share the work."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from digitocr import distributed
from digitocr.errors import ConfigError


def _torchrun(*args: str, cwd, timeout: int) -> subprocess.CompletedProcess:
    # torchrun's own module, so the test needs no console script on PATH; --standalone picks a free port.
    env = {key: value for key, value in os.environ.items() if key not in distributed.TORCHRUN_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_single_process_helpers_change_nothing():
    order = torch.randperm(10)
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1
    assert distributed.shard(order) is order
    assert distributed.local_batch_size(256) == 256 and distributed.shard_size(55000) == 55000
    assert distributed.all_reduce_sum(3.0, 4) == [3.0, 4]
    array = np.arange(5)
    assert distributed.gather(array) is array
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model and distributed.unwrap(model) is model
    assert distributed.init_from_env(torch.device("cpu")) == torch.device("cpu")


def test_peer_timeout_is_five_minutes_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv(distributed.PEER_TIMEOUT_VARIABLE, raising=False)
    assert distributed.peer_timeout() == distributed.PEER_TIMEOUT == datetime.timedelta(minutes=5)
    monkeypatch.setenv(distributed.PEER_TIMEOUT_VARIABLE, "20")
    assert distributed.peer_timeout() == datetime.timedelta(seconds=20)
    for text in ("0", "-1", "inf", "nan", "soon"):
        monkeypatch.setenv(distributed.PEER_TIMEOUT_VARIABLE, text)
        with pytest.raises(ConfigError, match=distributed.PEER_TIMEOUT_VARIABLE):
            distributed.peer_timeout()


def test_a_lost_rank_is_told_in_one_line_and_other_errors_pass():
    # What gloo raised in the two-host tests (tests/test_two_hosts.py), with its source location and advice.
    closed = (
        "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [10.213.77.2]:3253: "
        "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in the application."
    )
    assert distributed._reason(closed) == "Read error [10.213.77.2]:3253: Connection reset by peer"
    timed_out = (
        "[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] "
        "Timed out waiting 20000ms for recv operation to complete"
    )
    assert distributed._reason(timed_out) == "Timed out waiting 20000ms for recv operation to complete"
    error = RuntimeError(closed)
    with pytest.raises(RuntimeError) as raised, distributed.peers_watched():  # no process group: unchanged
        raise error
    assert raised.value is error


def test_two_ranks_split_every_epoch_and_reduce_metrics(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        textwrap.dedent("""
        import json, os, torch
        from digitocr import distributed
        device = distributed.init_from_env(torch.device("cpu"))
        order = torch.randperm(11, generator=torch.Generator().manual_seed(0))  # the same on every rank
        line = json.dumps({
            "rank": distributed.rank(), "main": distributed.is_main(), "device": str(device),
            "train": distributed.shard(order).tolist(),
            "eval": distributed.shard(order, drop_remainder=False).tolist(),
            "sum": distributed.all_reduce_sum(distributed.rank() + 1.0, 10),
            "gathered": distributed.gather(distributed.shard(torch.arange(5), drop_remainder=False).numpy()).tolist(),
            "batch": distributed.local_batch_size(256),
            "ddp": type(distributed.wrap(torch.nn.Linear(2, 2))).__name__,
        })
        # One write() per rank: both ranks share torchrun's stdout, and print() may split a line in two writes.
        os.write(1, (line + "\\n").encode())
    """)
    )
    done = _torchrun(str(script), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    ranks = sorted(
        (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")), key=lambda rank: rank["rank"]
    )
    assert [rank["rank"] for rank in ranks] == [0, 1] and [rank["main"] for rank in ranks] == [True, False]
    train = [set(rank["train"]) for rank in ranks]
    assert len(train[0]) == len(train[1]) == 5 and not train[0] & train[1]  # equal, disjoint shards
    assert sorted(ranks[0]["eval"] + ranks[1]["eval"]) == list(range(11))  # evaluation counts each item once
    assert all(rank["sum"] == [3.0, 20.0] for rank in ranks)
    assert all(sorted(rank["gathered"]) == [0, 1, 2, 3, 4] for rank in ranks)
    assert all(rank["batch"] == 128 and rank["ddp"] == "DistributedDataParallel" for rank in ranks)


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes(tmp_path, mnist_root):
    from digitocr.data import read_mnist, to_float_images
    from digitocr.inference import predict_logits
    from digitocr.modelfile import read_model_file

    done = _torchrun(
        "-m",
        "digitocr",
        "train",
        "--device",
        "cpu",
        "--out",
        "model.pth",
        "--quiet",
        "--json",
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    printed = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(printed) == 1  # rank 0 alone prints
    summary = json.loads(printed[0])
    assert summary["test_accuracy"] >= 0.98
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pth"]  # one model file, no checkpoint
    model_file = read_model_file(tmp_path / "model.pth")
    images, labels = read_mnist(train=False)
    predictions = predict_logits(model_file.model, to_float_images(images)).argmax(1)
    # The reduced test accuracy the ranks reported is that of the saved model on all 10,000 images. Each rank
    # read its half in other batches than this process does, so an image whose two best logits tie within
    # float32 rounding may go either way: at most 2 of the 10,000.
    assert (predictions == labels).sum().item() / len(labels) == pytest.approx(summary["test_accuracy"], abs=2e-4)
    assert model_file.metadata["metrics"]["test_accuracy"] == summary["test_accuracy"]

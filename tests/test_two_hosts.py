"""Training across two hosts: two network namespaces joined by one veth pair, one torchrun node in each.

The namespaces, their link and its /30 exist only for the test, so no traffic leaves them. Where they cannot be
made (not root, no `ip`), the test says so in one line and runs the same two-node rendezvous on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from digitocr import distributed

README = Path(__file__).parents[1] / "README.md"
# A /30 holds exactly these two host addresses; it is on the veth pair only, inside the test's namespaces.
ADDRESSES = ("10.213.77.1", "10.213.77.2")
# The veth ends are made inside their namespaces, so these names never meet the machine's own interfaces.
INTERFACES = ("digits0", "digits1")
PORT = 29500  # torchrun's default; each namespace is new, so nothing else can be listening on it there
FORCE_LOOPBACK = "DIGITOCR_TEST_LOOPBACK"  # =1: take the 127.0.0.1 path, as on a machine without namespaces
RUN_TIMEOUT = 600  # s: the whole two-node training; 51 s measured on the 2-core EPYC shared with other jobs
# s from the SIGKILL of one node to the other node's torchrun exiting: the killed rank's connections close at
# once, so the survivor's next all-reduce fails; then torchrun stops its agent. 3-6 s measured, under load.
KILLED_RANK_NOTICE = 60
SILENT_PEER_TIMEOUT = 20  # s: DIGITOCR_PEER_TIMEOUT for the frozen-node test, in place of the 5 minutes


@dataclass(frozen=True)
class Node:
    address: str  # --local-addr: what the other node reaches this one at
    interface: str  # GLOO_SOCKET_IFNAME: the only interface gloo's traffic may take
    namespace: str | None  # None: the machine's own network (the 127.0.0.1 fallback)

    def command(self, host: bool, endpoint: str, out: str) -> list[str]:
        """What runs on this node, as the README shows it: one rank, rendezvous at ``endpoint``."""
        return [
            f"GLOO_SOCKET_IFNAME={self.interface}",
            "torchrun",
            "--nnodes=2",
            "--nproc_per_node=1",
            "--rdzv-backend=c10d",
            "--rdzv-id=digits",
            f"--rdzv-endpoint={endpoint}",
            # The endpoint is on a second interface, which torchrun's own check (hostname -> address) misses.
            f"--rdzv-conf=is_host={int(host)}",
            f"--local-addr={self.address}",
            "-m",
            "digitocr",
            "train",
            "--device=cpu",
            f"--out={out}",
            "--json",
        ]

    def start(self, host: bool, endpoint: str, out: str, cwd: Path, log: Path, env: dict, cpu: int) -> subprocess.Popen:
        """This node's torchrun on ``cpu`` alone, as a host of its own: unpinned, each rank would take every core
        (torchrun sets one thread per rank only for several ranks per node), and the two would fight over them."""
        assignment, torchrun, *flags = self.command(host, endpoint, out)
        name, value = assignment.split("=")
        # torchrun from this interpreter's environment; ranks inherit PYTHONPATH and DIGITOCR_DATA from here.
        argv = [str(Path(sys.executable).with_name(torchrun)), *flags]
        if self.namespace is not None:
            argv = ["ip", "netns", "exec", self.namespace, *argv]
        environment = {key: value for key, value in os.environ.items() if key not in distributed.TORCHRUN_VARIABLES}
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env={**environment, **env, name: value},
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )


@dataclass(frozen=True)
class TwoHosts:
    nodes: tuple[Node, Node]  # the first hosts the rendezvous
    endpoint: str

    def start(self, cwd: Path, out: str, **env: str) -> list[subprocess.Popen]:
        """Both nodes' torchrun, stderr to node0.err and node1.err in ``cwd``; ``env`` added to both."""
        cpus = sorted(os.sched_getaffinity(0))
        return [
            node.start(index == 0, self.endpoint, out, cwd, cwd / f"node{index}.err", env, cpus[index % len(cpus)])
            for index, node in enumerate(self.nodes)
        ]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def make_namespaces(names: tuple[str, str]) -> TwoHosts:
    """Two namespaces, one veth pair between them, the /30 on it, loopback up (a new namespace has it down)."""
    for name in names:
        _ip("netns", "add", name)
    _ip(*f"link add {INTERFACES[0]} netns {names[0]} type veth peer name {INTERFACES[1]} netns {names[1]}".split())
    for name, interface, address in zip(names, INTERFACES, ADDRESSES):
        _ip("-n", name, "addr", "add", f"{address}/30", "dev", interface)
        _ip("-n", name, "link", "set", interface, "up")
        _ip("-n", name, "link", "set", "lo", "up")
    nodes = tuple(Node(address, interface, name) for name, interface, address in zip(names, INTERFACES, ADDRESSES))
    return TwoHosts(nodes, f"{ADDRESSES[0]}:{PORT}")


def loopback() -> TwoHosts:
    with socket.socket() as probe:  # a free port: the machine's own loopback is shared with everything else
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return TwoHosts((Node("127.0.0.1", "lo", None), Node("127.0.0.1", "lo", None)), f"127.0.0.1:{port}")


def remove_namespaces(names: tuple[str, str]) -> None:
    for name in names:  # deleting a namespace deletes its end of the veth pair, and so the pair
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
def two_hosts():
    names = (f"digitocr-a-{os.getpid()}", f"digitocr-b-{os.getpid()}")
    reason = namespaces_unavailable()
    if reason is None:
        try:
            hosts = make_namespaces(names)
        except subprocess.CalledProcessError as error:
            reason = f"`{shlex.join(error.cmd)}` failed: {error.stderr.strip()}"
    if reason is not None:
        remove_namespaces(names)
        print(f"no network namespaces ({reason}): both nodes on 127.0.0.1 instead", file=sys.stderr)
        yield loopback()
        return
    try:
        yield hosts
    finally:
        remove_namespaces(names)


def namespaces_unavailable() -> str | None:
    if os.environ.get(FORCE_LOOPBACK):
        return f"{FORCE_LOOPBACK} is set"
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no `ip` command"
    return None


def workers(agent: subprocess.Popen) -> list[int]:
    """The rank processes under one node's torchrun: its agent's children (`ip netns exec` execs, no fork)."""
    try:
        children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(pid) for pid in children]


def rank_of(pid: int) -> int | None:
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except FileNotFoundError:
        return None
    ranks = [entry[5:] for entry in environment if entry.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def end(agents: list[subprocess.Popen]) -> None:
    """Nothing of the run outlives the test: each node's ranks (their own sessions), then its agent."""
    for agent in agents:
        for pid in workers(agent):
            _kill(pid)
        if agent.poll() is None:
            _kill(agent.pid)
        agent.wait(timeout=30)
        agent.stdout.close()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.2)


def test_readme_shows_the_commands_the_tests_run():
    readme = " ".join(README.read_text().replace("\\\n", " ").split())
    nodes = [Node(address, interface, None) for address, interface in zip(ADDRESSES, INTERFACES)]
    for index, node in enumerate(nodes):
        command = shlex.join(node.command(host=index == 0, endpoint=f"{ADDRESSES[0]}:{PORT}", out="model.pth"))
        assert command in readme


@pytest.mark.slow
def test_two_nodes_train_over_their_own_link(two_hosts, tmp_path, mnist_root):
    from digitocr.data import read_mnist, to_float_images
    from digitocr.inference import predict_logits
    from digitocr.modelfile import read_model_file

    started = time.perf_counter()
    agents = two_hosts.start(tmp_path, "model.pth")
    try:
        outputs = [agent.communicate(timeout=RUN_TIMEOUT)[0] for agent in agents]
    finally:
        end(agents)
    seconds = time.perf_counter() - started
    logs = [(tmp_path / f"node{index}.err").read_text() for index in range(2)]
    assert [agent.returncode for agent in agents] == [0, 0], logs
    printed = [line for output in outputs for line in output.splitlines() if line.strip()]
    assert len(printed) == 1, printed  # rank 0 alone prints
    summary = json.loads(printed[0])
    print(f"two nodes: test accuracy {summary['test_accuracy']:.2%} in {seconds:.0f} s", file=sys.stderr)
    assert summary["test_accuracy"] >= 0.98
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pth", "node0.err", "node1.err"]
    model_file = read_model_file(tmp_path / "model.pth")
    images, labels = read_mnist(train=False)
    predictions = predict_logits(model_file.model, to_float_images(images)).argmax(1)
    # The two ranks evaluated their halves in other batches than this process: ties within float32 rounding.
    assert (predictions == labels).sum().item() / len(labels) == pytest.approx(summary["test_accuracy"], abs=2e-4)


def under_way(agents: list[subprocess.Popen], logs: Path) -> tuple[int, int]:
    """Waits until training runs on both nodes -> (node, pid) of rank 1's process: the rank that does not write
    the model, so the one that does must stop and write nothing."""
    # Rank 0 shows its second epoch's progress bar: gradients are being all-reduced between the nodes.
    wait_for(lambda: any("epoch 2/" in path.read_text() for path in logs.glob("node*.err")), RUN_TIMEOUT, "epoch 2")
    ranks = {rank_of(pid): (index, pid) for index, agent in enumerate(agents) for pid in workers(agent)}
    return ranks[1]


def assert_stopped_cleanly(survivor: subprocess.Popen, log: Path) -> None:
    assert survivor.returncode != 0
    errors = [line for line in log.read_text().splitlines() if line.startswith("digitocr: error:")]
    assert len(errors) == 1 and "training stopped: another rank failed or left (this is rank 0 of 2)" in errors[0]
    print(errors[0], file=sys.stderr)
    assert sorted(path.name for path in log.parent.iterdir()) == ["node0.err", "node1.err"]  # no model, no temporary


@pytest.mark.slow
def test_a_killed_node_stops_the_other_with_a_clear_error(two_hosts, tmp_path, mnist_root):
    agents = two_hosts.start(tmp_path, "model.pth")
    try:
        killed, worker = under_way(agents, tmp_path)
        _kill(worker)
        _kill(agents[killed].pid)  # the whole node goes, as when its machine crashes
        killed_at = time.monotonic()
        survivor = agents[1 - killed]
        survivor.wait(timeout=KILLED_RANK_NOTICE)
        noticed = time.monotonic() - killed_at
    finally:
        end(agents)
    print(f"the other node's torchrun exited {noticed:.1f} s after the kill", file=sys.stderr)
    assert_stopped_cleanly(survivor, tmp_path / f"node{1 - killed}.err")


@pytest.mark.slow
def test_a_silent_node_stops_the_other_after_the_peer_timeout(two_hosts, tmp_path, mnist_root):
    agents = two_hosts.start(tmp_path, "model.pth", **{distributed.PEER_TIMEOUT_VARIABLE: str(SILENT_PEER_TIMEOUT)})
    try:
        frozen, worker = under_way(agents, tmp_path)
        os.kill(worker, signal.SIGSTOP)  # alive, connections open, never answers: a hung or cut-off host
        frozen_at = time.monotonic()
        survivor = agents[1 - frozen]
        survivor.wait(timeout=SILENT_PEER_TIMEOUT + KILLED_RANK_NOTICE)
        noticed = time.monotonic() - frozen_at
    finally:
        end(agents)
    print(f"the other node's torchrun exited {noticed:.1f} s after the freeze", file=sys.stderr)
    assert noticed > SILENT_PEER_TIMEOUT / 2  # the timeout stopped it, not a closed connection
    assert_stopped_cleanly(survivor, tmp_path / f"node{1 - frozen}.err")

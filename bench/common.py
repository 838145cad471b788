"""What the benchmarks share: ports, a broker for the run, stopping what they started, results,
and what watches a running process: its resident memory and its consumer group's lag."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from infersight.config import LocalKafkaConfig
from infersight.localkafka import LocalKafka

console = Console()


def free_ports(count: int, low: int, high: int) -> list[int]:
    """``count`` distinct ports nobody listens on, from ``low``..``high`` (0..0: the OS chooses)."""
    candidates = random.sample(range(low, high + 1), high - low + 1) if high else [0] * count
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            if len(sockets) == count:
                return [sock.getsockname()[1] for sock in sockets]
        raise SystemExit(f"fewer than {count} free ports in {low}-{high}")
    finally:
        for sock in sockets:
            sock.close()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the cleanup below runs for it too, as for Ctrl-C."""

    def handler(signum: int, frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def kafka_broker(bootstrap: str | None, state_dir: Path, ports: list[int]) -> Iterator[str]:
    """Yield bootstrap servers: the given ones, or those of a local broker started for this run."""
    if bootstrap:
        yield bootstrap
        return
    config = LocalKafkaConfig.model_validate(
        {"state_dir": state_dir, "port": ports[0], "controller_port": ports[1]}
    )
    broker = LocalKafka(config)
    console.print(f"starting a local Kafka on port {ports[0]} in {state_dir} …")
    try:
        status = broker.start()
        yield status.bootstrap_servers
    finally:
        console.print("stopping the local Kafka …")
        broker.stop()


def run_in_process(target: Callable[..., None], args: tuple[Any, ...], what: str) -> Any:
    """Run ``target(*args, results)`` in a fresh process and return what it puts on ``results``.

    A fresh interpreter (spawn) keeps the parent's imports, threads and memory out of the figures.
    """
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    try:
        while process.is_alive():
            with contextlib.suppress(queue.Empty):
                return results.get(timeout=1)
        return results.get(timeout=1)  # it may have put its figures just before exiting
    except queue.Empty:
        raise SystemExit(f"the {what} process failed (exit code {process.exitcode})") from None
    finally:
        process.terminate()  # nothing happens once it has exited
        process.join()


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads) so far, from /proc; None once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process and its descendants (psutil if installed, else /proc); None once gone."""
    try:
        import psutil
    except ImportError:
        return _proc_rss_bytes(pid)
    try:
        process = psutil.Process(pid)
        return int(sum(p.memory_info().rss for p in (process, *process.children(recursive=True))))
    except psutil.Error:
        return None


def _proc_rss_bytes(pid: int) -> int | None:
    children: dict[int, list[int]] = {}  # parent pid → its children, from each process's stat
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(
                int(stat.parent.name)
            )
    total, family = 0, [pid]
    while family:
        current = family.pop()
        family.extend(children.get(current, ()))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            if current == pid:
                return None
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class ConsumerLag:
    """A consumer group's lag on one topic: end offsets minus committed offsets, over every partition.

    A partition the group has committed nothing on counts from its beginning offset.
    """

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    def committed(self) -> dict[Any, int]:
        from tests.helpers import committed_offsets

        return committed_offsets(self.bootstrap, self.group, self.topic)

    def __call__(self) -> int:
        from kafka import TopicPartition

        numbers = self.consumer.partitions_for_topic(self.topic) or ()
        partitions = [TopicPartition(self.topic, number) for number in numbers]
        ends = self.consumer.end_offsets(partitions)
        beginnings = self.consumer.beginning_offsets(partitions)
        committed = self.committed()
        return int(sum(ends[tp] - max(committed.get(tp, -1), beginnings[tp]) for tp in partitions))

    def close(self) -> None:
        self.consumer.close()


class Profiler:
    """``py-spy record`` of one process for ``seconds`` once started, by function.

    ``.txt`` gets py-spy's raw collapsed stacks, of which the functions with the most samples on
    top of the busiest thread's stack (own time) are printed; any other name gets a flame graph.
    """

    def __init__(self, output: Path, seconds: int, since: str) -> None:
        self.output = output
        self.seconds = seconds
        self.since = since
        self.process: subprocess.Popen[str] | None = None

    def start(self, pid: int) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        raw = self.output.suffix == ".txt"
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--function"]
        command += ["-d", str(self.seconds), "-o", str(self.output), "--threads"]
        command += ["--format", "raw" if raw else "flamegraph"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finish(self) -> None:
        if self.process is None:
            console.print("[yellow]py-spy never started[/]")
            return
        try:
            _, errors = self.process.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        if self.process.returncode:
            console.print(f"[yellow]py-spy exited with {self.process.returncode}:[/] {errors[-500:]}")
        elif self.output.suffix == ".txt":
            self.show_own_time()

    def show_own_time(self, top: int = 30) -> None:
        """Per thread, the samples; for the busiest, the functions on top of its stacks (own time)."""
        own: dict[str, Counter[str]] = {}
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            own.setdefault(frames[0], Counter())[frames[-1]] += int(count)
        threads = sorted(own.items(), key=lambda item: -sum(item[1].values()))
        for thread, counts in threads:
            console.print(f"py-spy {thread}: {sum(counts.values()):,} samples", highlight=False)
        if threads:
            _, counts = threads[0]
            total = sum(counts.values())
            console.print(f"own time in the busiest thread ({self.seconds}s from {self.since}):")
            for frame, samples in counts.most_common(top):
                console.print(f"  {samples / total:6.1%}  {frame}", highlight=False)


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {path}")


def port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def add_common_arguments(parser: argparse.ArgumentParser, default_json: Path, ports_for: str) -> None:
    """``--bootstrap``, ``--json`` and ``--ports``, the same in every benchmark."""
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka to use (default $KAFKA_BOOTSTRAP_SERVERS; without it a local broker is started)",
    )
    parser.add_argument(
        "--json", type=Path, default=default_json, help=f"where to write the figures (default {default_json})"
    )
    parser.add_argument(
        "--ports",
        default="0-0",
        metavar="LOW-HIGH",
        help=f"pick the {ports_for} and local broker's ports from this range (default: any free port)",
    )

"""``infersight replay``: recorded or generated KServe-format CloudEvents, sent to an ingest at a rate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from infersight.cli.context import CliError

console = Console(stderr=True, soft_wrap=True, highlight=False)


def _recorded(path: Path) -> list[list[object]]:
    from infersight.demo.traffic import Event

    units: list[list[object]] = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            body = item["body"]
            raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
            units.append([Event({str(k): str(v) for k, v in item["headers"].items()}, raw)])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise CliError(f'{path}:{number}: expected {{"headers": {{...}}, "body": ...}}: {exc}') from exc
    return units


def _generated(count: int, namespace: str, name: str) -> list[list[object]]:
    import uuid
    from datetime import UTC, datetime

    import numpy as np

    from infersight.demo.data import wine
    from infersight.demo.traffic import Model, inference

    model = Model(namespace, name, "v1")
    rng = np.random.default_rng()
    rows, classes = wine().draw(rng, count)
    prefix = uuid.uuid4().hex[:8]
    return [
        list(inference(model, f"replay-{prefix}-{index:06d}", "canary" if rng.random() < 0.2 else "default",
                       rows[index : index + 1], classes[index : index + 1], datetime.now(UTC)))
        for index in range(count)
    ]  # fmt: skip


def replay(
    recording: Annotated[
        Path | None,
        typer.Argument(
            help='JSON Lines of {"headers": {...}, "body": ...} (the demo writes traffic.jsonl); '
            "none: generate wine inferences.",
            dir_okay=False,
        ),
    ] = None,
    ingest_url: Annotated[str, typer.Option(help="Where the ingest listens.")] = "http://localhost:8080",
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="Events per second (default: as fast as possible).")
    ] = None,
    count: Annotated[int, typer.Option(min=1, help="Generated inferences (two events each).")] = 1000,
    namespace: Annotated[str, typer.Option(help="Namespace of generated events.")] = "infersight-demo",
    model: Annotated[str, typer.Option(help="InferenceService name of generated events.")] = "wine",
    concurrency: Annotated[int, typer.Option(min=1, help="Events in flight at once.")] = 16,
) -> None:
    """Send recorded or generated KServe logger events (binary-mode CloudEvents) to an ingest."""
    from infersight.demo.send import SendError, send

    units = _recorded(recording) if recording is not None else _generated(count, namespace, model)
    total = sum(len(unit) for unit in units)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sending events", total=total)
        try:
            sent = send(ingest_url.rstrip("/") + "/", units, concurrency=concurrency, rate=rate,  # type: ignore[arg-type]
                        on_sent=lambda n: progress.advance(task, n))  # fmt: skip
        except SendError as exc:
            raise CliError(str(exc)) from exc
    console.print(f"sent {sent.events:,} events in {sent.seconds:.1f} s ({sent.rate:,.0f}/s) to {ingest_url}")

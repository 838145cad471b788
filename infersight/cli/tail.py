"""``infersight tail``: events and detections as they arrive, one line each (or JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from infersight.cli.context import CliError, kafka_error, settings_of
from infersight.cli.storeargs import Model, Namespace

if TYPE_CHECKING:
    from infersight.streams.tail import Seen

console = Console(soft_wrap=True, highlight=False)
notes = Console(stderr=True, soft_wrap=True, highlight=False)
_KINDS = {"request": "request", "response": "response", "feedback": "feedback"}


def _short_type(event_type: str) -> str:
    last = event_type.rsplit(".", 1)[-1]
    return _KINDS.get(last, event_type)


def _number(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "-" if value is None else str(value)


def line(seen: Seen) -> str:
    """One record as a line of text; ids come last and whole, so they can be copied."""
    model = seen.model
    where = f"{model.namespace}/{model.inferenceservice}"
    endpoint = "/".join(part for part in (model.endpoint, model.component) if part) or "-"
    if seen.error is not None:
        return f"{'?':<11} {seen.kind} not readable: {seen.error}"
    if seen.kind == "event":
        attributes = seen.attributes
        when = attributes.get("time", "")[11:23] or "-"
        kind = _short_type(attributes.get("type", ""))
        return f"{when:<12} {kind:<9} {where} {endpoint} {seen.size:,} B  id {attributes.get('id', '')}"
    data = seen.data
    window = data.get("window") or {}
    when = str(window.get("end") or "")[11:23] or "-"
    verdict = "DETECTED" if data.get("detected") else "clear"
    if data.get("kind") == "drift":
        figure = f"p {_number(data.get('p_value'))}" if data.get("p_value") is not None else "stat"
        figure += f" (threshold {_number(data.get('threshold'))}) over {window.get('instances', '?')}"
    else:
        figure = f"score {_number(data.get('statistic'))} (threshold {_number(data.get('threshold'))})"
    ids = " ".join(data.get("request_ids") or [])[:200]
    detail = f"{data.get('kind', '?')} {data.get('detector', '?')} {verdict} {figure}"
    return f"{when:<12} {detail} {where} {endpoint}" + (f"  request {ids}" if ids else "")


def tail(
    ctx: typer.Context,
    model: Model = None,
    namespace: Namespace = None,
    events: Annotated[bool, typer.Option("--events/--no-events", help="Show payload events.")] = True,
    detections: Annotated[bool, typer.Option("--detections/--no-detections", help="Show detections.")] = True,
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the topics' beginnings, not their ends.")
    ] = False,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many lines.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print payload events and detections from Kafka as they arrive, until Ctrl-C."""
    from infersight.kafkaclient import KafkaUnreachable, wait_for_kafka
    from infersight.streams.tail import tail as read

    if not events and not detections:
        raise CliError("nothing to show: --no-events and --no-detections together")
    settings = settings_of(ctx)
    try:
        wait_for_kafka(settings.kafka)
    except KafkaUnreachable as exc:
        raise kafka_error(exc) from exc
    shown = 0
    try:
        start = "beginning" if from_beginning else "end"

        def reading(topics: list[str]) -> None:
            notes.print(f"reading {', '.join(topics)} from the {start}; Ctrl-C stops", markup=False)

        found = read(
            settings.kafka,
            events=events,
            detections=detections,
            from_beginning=from_beginning,
            on_reading=reading,
        )
        for seen in found:
            if model is not None and seen.model.inferenceservice != model:
                continue
            if namespace is not None and seen.model.namespace != namespace:
                continue
            if as_json:
                record = {
                    "kind": seen.kind,
                    "attributes": seen.attributes,
                    "size": seen.size,
                    "data": seen.data,
                }
                console.print(orjson.dumps(record).decode(), markup=False)
            else:
                console.print(escape(line(seen)), markup=False)
            shown += 1
            if count is not None and shown >= count:
                return
    except KeyboardInterrupt:
        return

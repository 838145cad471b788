"""``infersight reference``: the next version of a detector, fitted on traffic the store kept.

The reference set is a model's stored inputs over a time range, without what was flagged
(outliers, adversarial inferences, windows where drift was found) unless asked for; the detector
is fitted on it, saved with alibi-detect's ``save_detector`` and published as a new version of
a versioned folder (``<uri>/<version>/`` and ``<uri>/LATEST``), which the workers take within
``detections.reload_seconds`` without a restart.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from infersight.cli.context import CliError, settings_of
from infersight.cli.storeargs import (
    Labelled,
    Namespace,
    Since,
    Store,
    Until,
    open_for_reading,
    parse_time,
    store_errors,
    store_url,
)

console = Console(stderr=True, soft_wrap=True, highlight=False)


def reference(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="The InferenceService.")],
    detector: Annotated[str, typer.Option("--detector", "-d", help="The configured detector to refit.")],
    namespace: Namespace = None,
    since: Since = None,
    until: Until = None,
    labelled: Labelled = None,
    include_flagged: Annotated[
        bool, typer.Option(help="Keep outliers, adversarial inferences and drift windows in the set.")
    ] = False,
    most: Annotated[int, typer.Option(min=2, help="At most this many instances, the newest.")] = 10_000,
    algorithm: Annotated[
        str | None, typer.Option(help="The algorithm to fit (default: the detector's configured one).")
    ] = None,
    parameters: Annotated[
        str | None, typer.Option(help="Its parameters as JSON (default: the configured ones).")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="The versioned folder, any fsspec URI (default: the detector's uri).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="The version's name (default: the time now, UTC).")
    ] = None,
    store: Store = None,
) -> None:
    """Fit a detector on stored traffic and publish it as the next version the workers load."""
    from infersight.detectors.catalog import CatalogError, build
    from infersight.detectors.loading import use_legacy_keras
    from infersight.detectors.sources import SourceError, publish_version
    from infersight.sinks.store.filters import PayloadFilter
    from infersight.sinks.store.reference import reference_rows

    settings = settings_of(ctx)
    entries = [
        (entry, config)
        for entry in settings.models
        for config in entry.detectors
        if entry.inferenceservice == model and (namespace is None or entry.namespace == namespace)
        if config.name == detector
    ]
    if len(entries) != 1:
        found = "no" if not entries else "several"
        raise CliError(f"{found} detector {detector!r} configured for {model} (models: in the configuration)")
    entry, config = entries[0]
    chosen = algorithm or config.algorithm
    if chosen is None:
        raise CliError(f"{detector} is loaded from {config.uri}: name the algorithm to fit with --algorithm")
    try:
        options: dict[str, Any] = json.loads(parameters) if parameters else dict(config.parameters)
    except json.JSONDecodeError as exc:
        raise CliError(f"--parameters: not JSON: {exc}") from exc
    target = output or config.uri
    if target is None:
        raise CliError(f"{detector} has no uri to publish to: pass --output")
    flagged = None if include_flagged else False
    where = PayloadFilter(
        namespace=entry.namespace,
        inferenceservice=model,
        component=entry.component,
        endpoint=entry.endpoint,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        labelled=labelled,
        outlier=flagged,
        adversarial=flagged,
        in_drift=flagged,
    )
    engine = open_for_reading(store_url(ctx, store))
    with store_errors():
        rows = reference_rows(engine, where, config.on, config.tensor, most)
    name = version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    use_legacy_keras()  # alibi-detect's saving imports TensorFlow, which must come up with Keras 2
    try:
        fitted = build(chosen, config.kind, rows, options)
        from alibi_detect.saving import save_detector

        with tempfile.TemporaryDirectory() as folder:
            save_detector(fitted, folder)
            published = publish_version(Path(folder), target, name, config.storage_options)
    except (CatalogError, SourceError) as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # alibi-detect and its backends raise anything
        raise CliError(f"cannot fit or save {chosen}: {type(exc).__name__}: {exc}") from exc
    console.print(
        f"fitted {chosen} on {rows.shape[0]:,} instances of {rows.shape[1]} features; version {name} at "
        f"{published} (workers with uri {target} take it within {settings.detections.reload_seconds:g} s)"
    )

"""The web UI and the report in a real headless Chromium (Debian's), over a real query API process.

Every page must load with no request leaving the API's address (no CDN), draw its charts, and open a
flagged inference's stored payload: a table for tabular inputs, an image for pixel inputs.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infersight.cli.app import app as cli
from infersight.records import Detection, ModelRef, Score
from infersight.sinks.store import SqlStore
from tests.helpers import free_port, stop, wait_ready
from tests.store_data import BASE_TIME, feedback_event, outlier_score, record, v1_request, v1_response

playwright_api = pytest.importorskip("playwright.sync_api")

IRIS = ModelRef("models", "iris", "default", "predictor")
IRIS_CANARY = ModelRef("models", "iris", "canary", "predictor")
DIGITS = ModelRef("vision", "digits", "default", "predictor")
TOKEN = "ui-t0ken"


def chromium() -> str:
    found = (
        os.environ.get("INFERSIGHT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "the browser tests need Debian's chromium (apt-get install chromium); .ci/run installs it"
        )
    return found


def drift_window(model: ModelRef, index: int, shifted: bool) -> Detection:
    start = BASE_TIME.timestamp() + 20 * index
    quiet = (0.5, 0.4, 0.6, 0.7) if model.endpoint == "default" else (0.5, 0.2, 0.6, 0.7)
    p_values = (1e-6, 0.4, 1e-5, 0.7) if shifted else quiet
    return Detection(
        id=f"ks-{model.endpoint}-{index}",
        detector="ks",
        kind="drift",
        model=model,
        detected=shifted,
        statistic=0.8 if shifted else 0.1,
        p_value=min(p_values),
        threshold=0.0125,
        window_start=start,
        window_end=start + 19,
        request_ids=(),
        instances=10,
        features=("input_0", "input_1", "input_2", "input_3"),
        feature_statistics=tuple(0.8 if p < 0.01 else 0.1 for p in p_values),
        feature_p_values=p_values,
        time=start + 20,
        algorithm="KSDrift",
    )


def flag(model: ModelRef, request_id: str, offset_s: float, score: float, detector: str) -> Detection:
    at = BASE_TIME.timestamp() + offset_s
    return Detection(
        id=f"{detector}-{request_id}",
        detector=detector,
        kind="outlier",
        model=model,
        detected=True,
        statistic=score,
        p_value=None,
        threshold=1.0,
        window_start=at,
        window_end=at,
        request_ids=(request_id,),
        instances=1,
        time=at,
        algorithm="IForest",
    )


def fill(store: SqlStore) -> None:
    """Iris on two endpoints for 200 s (default drifts after 120 s), and 8x8 digits, some flagged."""
    records, detections, feedback = [], [], []
    for n in range(200):
        model = IRIS if n % 2 == 0 else IRIS_CANARY
        shifted = model is IRIS and n >= 120
        row = [5.0 + (n % 10) / 10 + (3.0 if shifted else 0.0), 3.0, 1.5 + (2.0 if shifted else 0.0), 0.2]
        score = 2.5 if n in (40, 150) else 0.2
        request_id = f"iris-{n:03d}"
        records.append(
            record(
                request_id,
                v1_request([row]),
                v1_response([n % 3]),
                model=model,
                offset_s=n,
                scores=(outlier_score(score),),
            )
        )
        if score > 1:
            detections.append(flag(model, request_id, n, score, "iforest"))
        if n % 4 == 0:
            feedback.append(feedback_event(f"fb-{n}", request_id, n % 3 if n < 100 else 0, model=model))
    for index in range(10):
        detections.append(drift_window(IRIS, index, index >= 6))
        detections.append(drift_window(IRIS_CANARY, index, False))
    for n in range(12):
        pixels = [round(math.sin(n + i) ** 2 * 16, 2) for i in range(64)]
        request_id = f"digit-{n:02d}"
        score = 3.0 if n == 5 else 0.3
        per_pixel = Score(
            detector="vae",
            kind="outlier",
            scores=(score,),
            flags=(True,),
            threshold=1.0,
            feature_scores=(tuple(float(i % 8) for i in range(64)),),
        )
        records.append(
            record(
                request_id,
                v1_request([pixels]),
                v1_response([n % 10]),
                model=DIGITS,
                offset_s=10 * n,
                scores=(per_pixel if score > 1 else outlier_score(score, detector="vae"),),
            )
        )
        if score > 1:
            detections.append(flag(DIGITS, request_id, 10 * n, score, "vae"))
    store.write(records, detections, feedback)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'ui.db'}"
    store = SqlStore(url)
    fill(store)
    store.close()
    return url


def serve_api(store_url: str, log_dir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    log = log_dir / f"api-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infersight",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            store_url,
        ],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, f"{url}/healthz", "query API", log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def api_url(store_file: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_api(store_file, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def locked_api_url(store_file: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_api(
        store_file, tmp_path_factory.mktemp("locked"), INFERSIGHT_API__AUTH_TOKENS=f'["{TOKEN}"]'
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records every request it makes and every script error it hits."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.requests = []
    opened.errors = []
    opened.on("request", lambda request: opened.requests.append(request.url))
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    context.close()


def ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready='true']", timeout=30_000)


def drawn(page: Any, selector: str) -> list[int]:
    """Per canvas under ``selector``: how many points or bars its chart holds (after drawing)."""
    page.wait_for_function(
        f"() => [...document.querySelectorAll({selector!r} + ' canvas')].some(c => c.chart)", timeout=30_000
    )
    return page.evaluate(
        f"""() => [...document.querySelectorAll({selector!r} + ' canvas')].filter(c => c.chart).map(c =>
            c.chart.data.datasets.reduce(
                (n, d) => n + d.data.filter(v => v !== null && (v.y ?? v) !== null).length, 0))"""
    )


def painted(page: Any, selector: str) -> bool:
    """Whether the first canvas under ``selector`` has pixels that are not blank."""
    return page.evaluate(
        f"""() => {{
            const canvas = document.querySelector({selector!r});
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
            return false;
        }}"""
    )


def test_models_page_lists_every_model_and_endpoint(page: Any, api_url: str) -> None:
    page.goto(f"{api_url}/ui")
    ready(page)
    rows = page.locator("#models tbody tr")
    assert rows.count() == 3
    text = page.locator("#models").inner_text()
    assert "models/iris" in text and "vision/digits" in text and "canary (predictor)" in text
    assert not page.errors
    assert all(url.startswith(api_url) for url in page.requests), page.requests


def test_model_page_draws_traffic_accuracy_and_drift_and_opens_a_window(page: Any, api_url: str) -> None:
    page.goto(f"{api_url}/ui/#/models/models/iris")
    ready(page)
    assert page.locator(".side-by-side tbody tr").count() == 2  # default and canary side by side
    # Two revisions (read from the endpoint here): their canary analysis, verdict and chart.
    assert page.locator("#revisions tbody tr").count() == 2
    assert page.locator("#canary-verdict strong").inner_text() in {"promote", "hold", "roll back"}
    assert drawn(page, "#canary") and drawn(page, "#canary")[0] > 0
    counts = drawn(page, "#timelines")
    assert len(counts) == 3 and all(n > 0 for n in counts)  # traffic, flags and accuracy, both endpoints
    drift = drawn(page, "#drift .chart")
    assert drift and drift[0] >= 20  # 10 windows per endpoint, plus the threshold line
    assert painted(page, "#timelines canvas")
    # The latest window with drift is open: per-feature p-values and reference-versus-window histograms.
    page.wait_for_selector("#window .grid canvas")
    assert "ks · default (predictor)" in page.locator("#window").inner_text()
    assert page.locator("#window .grid .chart").count() == 4
    # Click a canary window's point on the drift chart: its features replace the others.
    point = page.evaluate(
        """() => {
            const canvas = document.querySelector('#drift canvas');
            canvas.scrollIntoView({block: 'center'});
            const chart = canvas.chart;
            const index = chart.data.datasets.findIndex(d => d.label.startsWith('canary'));
            const element = chart.getDatasetMeta(index).data[0];
            const box = canvas.getBoundingClientRect();
            return {x: box.left + element.x, y: box.top + element.y};
        }"""
    )
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("() => document.querySelector('#window').innerText.includes('canary')")
    assert "no drift" in page.locator("#window").inner_text()
    assert not page.errors
    assert all(url.startswith(api_url) for url in page.requests), page.requests


def test_a_flagged_inference_opens_its_stored_payload(page: Any, api_url: str) -> None:
    page.goto(f"{api_url}/ui/#/models/models/iris")
    ready(page)
    assert page.locator("#flagged tbody tr").count() == 2
    page.locator("#flagged a.open-payload", has_text="iris-150").click()
    page.wait_for_selector("#payload article.stored-payload")
    text = page.locator("#payload").inner_text()
    assert "Stored payload iris-150" in text and "iforest" in text and "2.5" in text
    cells = page.locator("#payload table.tensor tbody tr").first.inner_text()
    assert cells.split("\t") == ["0", "8", "3", "3.5", "0.2"]  # instance 0, drifted: 5.0 + 3.0, 1.5 + 2.0
    # Pixels: the digits model's flagged inference is drawn as an 8x8 image.
    page.goto(f"{api_url}/ui/#/models/vision/digits")
    ready(page)
    page.locator("#flagged a.open-payload").first.click()
    page.wait_for_selector("#payload canvas.image")
    size = "() => { const c = document.querySelector('#payload canvas.image'); return [c.width, c.height]; }"
    assert page.evaluate(size) == [8, 8]
    assert painted(page, "#payload canvas.image")
    # With the detector's score per pixel beside it, as a heatmap.
    assert page.locator("#payload canvas.image").count() == 2
    assert "vae: score per pixel" in page.locator("#payload .instance").inner_text()
    assert not page.errors


def test_the_ui_asks_for_the_apis_bearer_token(page: Any, locked_api_url: str) -> None:
    page.goto(f"{locked_api_url}/ui")
    ready(page)
    assert "needs a bearer token" in page.locator("form.token").inner_text()
    page.fill("form.token input", "wrong")
    page.click("form.token button")
    page.wait_for_selector("text=That token was refused")
    page.fill("form.token input", TOKEN)
    page.click("form.token button")
    page.wait_for_selector("#models tbody tr")
    assert page.locator("#models tbody tr").count() == 3


def test_the_report_stands_alone_offline(page: Any, store_file: str, tmp_path: Path) -> None:
    output = tmp_path / "iris.html"
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "--model", "iris", "--store", store_file, "--output", str(output)])
    assert result.exit_code == 0, result.output
    missing = runner.invoke(cli, ["report", "--store", store_file])
    assert missing.exit_code == 1 and "several models match" in str(missing.exception)
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
    )
    page.goto(output.as_uri())
    ready(page)
    assert all(url.startswith("file:") for url in page.requests), page.requests
    assert "infersight report: models/iris" in page.title()
    assert all(n > 0 for n in drawn(page, "#timelines"))
    page.wait_for_selector("#window .grid canvas")
    labels = page.evaluate(
        "() => document.querySelector('#timelines canvas').chart.options.scales.y.title.text"
    )
    assert labels == "inferences"
    page.locator("#flagged a.open-payload").first.click()
    page.wait_for_selector("#payload article.stored-payload")
    assert not page.errors

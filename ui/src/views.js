// The pages: the models, one model (traffic, accuracy, drift, flagged inferences), a stored payload.

import {
  accuracyChart,
  canaryChart,
  distributionChart,
  driftChart,
  featureChart,
  flaggedChart,
  formatTime,
  setSpans,
  trafficChart,
} from "./charts.js";
import { el, endpointLabel, modelHref, number, percent, table } from "./dom.js";

export function modelsPage(models) {
  if (!models.length) {
    return el("p", { class: "empty" }, "Nothing stored yet: send traffic to the ingest, and a worker stores it.");
  }
  const rows = models.map((m) => [
    el("a", { href: modelHref(m.namespace, m.inferenceservice) }, `${m.namespace}/${m.inferenceservice}`),
    endpointLabel(m),
    number(m.inferences),
    formatTime(m.last_seen),
    `${number(m.outliers)} (${percent(m.inferences ? m.outliers / m.inferences : null)})`,
    number(m.adversarial),
    m.accuracy === null ? "–" : `${percent(m.accuracy)} of ${number(m.labelled)}`,
    el("span", { class: m.drift_detected ? "bad" : "good" }, `${number(m.drift_detected)} of ${number(m.detections)}`),
  ]);
  return el(
    "section",
    {},
    el("h2", {}, "Models"),
    table(
      ["model", "endpoint", "inferences", "last seen (UTC)", "outliers", "adversarial", "accuracy", "windows with drift / detections"],
      rows,
      { id: "models" },
    ),
  );
}

function endpointTable(data) {
  const rows = data.endpoints.map((e) => [
    endpointLabel(e),
    number(e.inferences),
    formatTime(e.first_seen),
    formatTime(e.last_seen),
    percent(e.inferences ? e.outliers / e.inferences : null),
    percent(e.inferences ? e.adversarial / e.inferences : null),
    e.accuracy === null ? "–" : `${percent(e.accuracy)} of ${number(e.labelled)}`,
    number(e.drift_detected),
  ]);
  return table(
    ["endpoint", "inferences", "first seen", "last seen", "outlier rate", "adversarial rate", "accuracy", "drift windows"],
    rows,
    { class: "side-by-side" },
  );
}

function chartBox(draw, ...args) {
  const box = el("div", { class: "chart" });
  // Drawn once the box is in the page, so that Chart.js can measure it.
  requestAnimationFrame(() => draw(box, ...args));
  return box;
}

async function showWindow(target, detection, sources) {
  target.replaceChildren(el("p", {}, "Loading the window…"));
  let window;
  try {
    window = await sources.distributions(detection.id);
  } catch (error) {
    target.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
    return;
  }
  if (!window) {
    target.replaceChildren(el("p", { class: "empty" }, "This window's distributions are not in this report."));
    return;
  }
  const head = el(
    "p",
    {},
    `${detection.detector} · ${endpointLabel(detection)} · ${formatTime(window.window_start)} → ${formatTime(window.window_end)} · `,
    el("span", { class: detection.detected ? "bad" : "good" }, detection.detected ? "drift found" : "no drift"),
    ` · p-value ${number(detection.p_value)} · threshold ${number(window.threshold)} · ${number(detection.instances)} instances`,
  );
  if (!window.features.length) {
    target.replaceChildren(head, el("p", { class: "empty" }, "This detector reports no per-feature values."));
    return;
  }
  const grid = el("div", { class: "grid" });
  for (const feature of window.features.slice(0, 24)) grid.append(chartBox(distributionChart, feature));
  target.replaceChildren(
    head,
    chartBox(featureChart, window),
    el("h4", {}, "Reference (blue) and window (red) per feature, binned alike"),
    grid,
  );
}

function driftSection(data, sources) {
  const detail = el("div", { class: "window", id: "window" });
  const byDetector = new Map();
  for (const d of data.drift) {
    if (!byDetector.has(d.detector)) byDetector.set(d.detector, []);
    byDetector.get(d.detector).push(d);
  }
  const charts = [];
  for (const [detector, detections] of byDetector) {
    const byEndpoint = new Map();
    for (const d of [...detections].sort((a, b) => Date.parse(a.window_end) - Date.parse(b.window_end))) {
      const key = endpointLabel(d);
      if (!byEndpoint.has(key)) byEndpoint.set(key, []);
      byEndpoint.get(key).push(d);
    }
    const series = [...byEndpoint].map(([key, list]) => ({ label: key, detections: list }));
    const found = detections.filter((d) => d.detected).length;
    const title = `${detector} (${detections[0].algorithm}): ${found} of ${detections.length} windows with drift`;
    charts.push(chartBox(driftChart, title, series, (d) => showWindow(detail, d, sources)));
  }
  if (!charts.length) return el("section", {}, el("h3", {}, "Drift"), el("p", { class: "empty" }, "No drift tests in this span."));
  const latest = [...data.drift].sort((a, b) => Date.parse(b.window_end) - Date.parse(a.window_end));
  const first = latest.find((d) => d.detected && d.features.length) || latest.find((d) => d.features.length);
  if (first) showWindow(detail, first, sources);
  return el(
    "section",
    {},
    el("h3", {}, "Drift per detector"),
    el("p", { class: "hint" }, "Click a window to see its features beside the reference."),
    el("div", { class: "grid", id: "drift" }, charts),
    detail,
  );
}

function flaggedSection(data, sources) {
  const detail = el("div", { class: "payload", id: "payload" });
  if (!data.flagged.length) {
    return el("section", {}, el("h3", {}, "Outliers and adversarial inferences"), el("p", { class: "empty" }, "None flagged in this span."));
  }
  const rows = data.flagged.slice(0, 200).map((d) => [
    formatTime(d.window_end),
    endpointLabel(d),
    `${d.detector} (${d.kind})`,
    number(d.statistic),
    number(d.threshold),
    el(
      "a",
      { href: "#payload", class: "open-payload", onclick: (event) => {
        event.preventDefault();
        showPayloads(detail, d, sources);
      } },
      d.request_ids[0] || d.id,
    ),
  ]);
  return el(
    "section",
    {},
    el("h3", {}, `Outliers and adversarial inferences (${number(data.flagged.length)})`),
    table(["time (UTC)", "endpoint", "detector", "score", "threshold", "request id"], rows, { id: "flagged" }),
    detail,
  );
}

async function showPayloads(target, detection, sources) {
  target.replaceChildren(el("p", {}, "Loading the payload…"));
  try {
    const items = await sources.payloads(detection.id);
    if (!items || !items.length) {
      target.replaceChildren(el("p", { class: "empty" }, "The payload is not in this report or the store."));
      return;
    }
    target.replaceChildren(...items.map((item) => payloadView(item, detection.detector)));
    target.scrollIntoView();
  } catch (error) {
    target.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  }
}

// A square image side for `count` values per instance, or 0 when they do not look like one.
function imageShape(shape) {
  const rest = shape.slice(1);
  if (rest.length >= 2 && rest[0] >= 8 && rest[1] >= 8 && (rest.length === 2 || rest[2] <= 4 || rest[0] === 1)) {
    return rest.length === 3 && rest[0] === 1 ? [rest[1], rest[2]] : [rest[0], rest[1]];
  }
  if (rest.length === 1 && rest[0] >= 64 && Number.isInteger(Math.sqrt(rest[0]))) {
    const side = Math.sqrt(rest[0]);
    return [side, side];
  }
  return null;
}

function flatten(value) {
  return Array.isArray(value) ? value.flatMap(flatten) : [value];
}

function drawImage(values, [height, width], colour) {
  const canvas = el("canvas", { width, height, class: "image" });
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  const numbers = values.map((v) => (typeof v === "number" ? v : 0));
  const low = Math.min(...numbers);
  const high = Math.max(...numbers);
  const channels = values.length / (width * height);
  for (let i = 0; i < width * height; i++) {
    // Several channels: their mean; the colour map is grey for images, white to red for scores.
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += numbers[i * channels + c] ?? 0;
    const level = high > low ? (sum / channels - low) / (high - low) : 0;
    const [r, g, b] = colour ? [255, 255 * (1 - level), 255 * (1 - level)] : [255 * level, 255 * level, 255 * level];
    pixels.data.set([r, g, b, 255], i * 4);
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

function tensorView(tensor, scores) {
  const instances = tensor.shape.length ? tensor.shape[0] : 1;
  const image = tensor.kind !== "string" ? imageShape(tensor.shape) : null;
  const caption = el("p", { class: "hint" }, `${tensor.name}: ${tensor.kind}, shape [${tensor.shape.join(", ")}]`);
  const data = tensor.shape.length ? tensor.data : [tensor.data];
  if (image) {
    const figures = data.slice(0, 16).map((instance, index) => {
      const values = flatten(instance);
      const drawn = [el("figure", {}, drawImage(values, image, false), el("figcaption", {}, `instance ${index}`))];
      const perFeature = scores.find((s) => Array.isArray(s.feature_scores) && s.feature_scores[index]);
      if (perFeature) {
        drawn.push(
          el(
            "figure",
            {},
            drawImage(flatten(perFeature.feature_scores[index]), image, true),
            el("figcaption", {}, `${perFeature.detector}: score per pixel`),
          ),
        );
      }
      return el("div", { class: "instance" }, drawn);
    });
    return el("div", {}, caption, el("div", { class: "images" }, figures));
  }
  const rows = data.slice(0, 50).map((instance) => flatten(instance));
  const width = Math.max(0, ...rows.map((r) => r.length));
  const names = tensor.columns && tensor.columns.length === width ? tensor.columns : [...Array(width).keys()].map(String);
  const shown = names.slice(0, 64);
  const body = rows.map((r, index) => [String(index), ...r.slice(0, 64).map((v) => number(v))]);
  return el("div", { class: "scroll" }, caption, table(["instance", ...shown], body, { class: "tensor" }), instances > 50 ? el("p", { class: "hint" }, `first 50 of ${instances} instances`) : null);
}

function payloadView(item, detector) {
  const scores = Object.entries(item.scores || {}).map(([name, s]) => ({ detector: name, ...s }));
  const scoreRows = scores.map((s) => [
    s.detector,
    s.kind,
    (s.scores || []).map((v) => number(v)).join(", "),
    number(s.threshold),
    (s.flags || []).map((f) => (f ? "flagged" : "–")).join(", "),
  ]);
  return el(
    "article",
    { class: "stored-payload" },
    el("h4", {}, `Stored payload ${item.request_id}`),
    el(
      "p",
      {},
      `${item.namespace}/${item.inferenceservice} · ${endpointLabel(item)} · ${formatTime(item.time)} · ${item.protocol || "?"} · `,
      `prediction ${JSON.stringify(item.prediction)} · label ${item.label === null ? "–" : JSON.stringify(item.label)}`,
    ),
    el("h5", {}, "Scores"),
    table(["detector", "kind", "score per instance", "threshold", "flags"], scoreRows, { class: "scores" }),
    el("h5", {}, "Inputs"),
    (item.inputs || []).map((t) => tensorView(t, scores.filter((s) => !detector || s.detector === detector || s.feature_scores))),
    el("h5", {}, "Outputs"),
    (item.outputs || []).map((t) => tensorView(t, [])),
  );
}

function canarySection(data) {
  const revisions = (data.revisions || []).filter((r) => r.revision);
  if (!revisions.length) return null;
  const rows = revisions.map((r) => [
    r.revision,
    number(r.inferences),
    formatTime(r.first_seen),
    formatTime(r.last_seen),
    percent(r.inferences ? r.outliers / r.inferences : null),
    r.labelled ? `${percent(r.correct / r.labelled)} of ${number(r.labelled)}` : "–",
  ]);
  const parts = [
    el("h3", {}, "Revisions and canary"),
    table(["revision", "inferences", "first seen", "last seen", "outlier rate", "accuracy"], rows, { id: "revisions" }),
  ];
  const verdict = data.canary;
  if (verdict && verdict.error) {
    parts.push(el("p", { class: "hint" }, `Canary analysis: ${verdict.error}`));
  } else if (verdict) {
    const tone = verdict.verdict === "promote" ? "good" : verdict.verdict === "roll back" ? "bad" : "hint";
    const differs = verdict.windows.filter((w) => w.call === "differs").length;
    parts.push(
      el(
        "p",
        { id: "canary-verdict" },
        el("strong", { class: tone }, verdict.verdict),
        `: ${verdict.reason} (${verdict.candidate} against ${verdict.baseline}; ${differs} of ${verdict.windows.length} windows differ)`,
      ),
      el("div", { class: "grid two", id: "canary" }, chartBox(canaryChart, verdict)),
    );
  }
  return el("section", {}, parts);
}

export function modelPage(data, sources, onRange) {
  if (!data.endpoints.length) {
    return el("p", { class: "empty" }, `Nothing stored for ${data.namespace}/${data.inferenceservice}.`);
  }
  const spans = setSpans(data.spans);
  const legend = spans.length
    ? el(
        "p",
        { class: "spans", id: "spans" },
        "Shaded: ",
        spans.map((span) =>
          el("span", { class: "span" }, el("i", { style: `background:${span.colour}` }), span.label),
        ),
      )
    : null;
  const timelines = data.timelines
    .filter((t) => t.buckets.some((b) => b.inferences))
    .map((t) => ({ ...t, label: endpointLabel(t) }));
  const ranges = ["15m", "1h", "24h", "7d", "all"].map((range) =>
    onRange
      ? el("button", { class: range === data.range ? "on" : "", onclick: () => onRange(range), "data-range": range }, range)
      : null,
  );
  return el(
    "section",
    {},
    el("h2", {}, `${data.namespace}/${data.inferenceservice}`),
    el("p", { class: "hint" }, `${formatTime(data.since)} → ${formatTime(data.until)} UTC `, ...ranges),
    endpointTable(data),
    legend,
    el(
      "div",
      { class: "grid three", id: "timelines" },
      chartBox(trafficChart, timelines),
      chartBox(flaggedChart, timelines),
      chartBox(accuracyChart, timelines),
    ),
    canarySection(data),
    driftSection(data, sources),
    flaggedSection(data, sources),
  );
}

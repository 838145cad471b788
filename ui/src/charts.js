// The charts of the UI and the report, on Chart.js: every axis labelled, every series in a legend.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
} from "chart.js";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
);

// Labelled stretches of time (a report's phases), shaded on every chart with a time axis.
export const SPAN_COLOURS = ["#4c78a8", "#e45756", "#f58518", "#b279a2", "#54a24b", "#9d755d"];
let spans = [];

export function setSpans(list) {
  spans = (list || []).map((span, index) => ({
    ...span,
    from: Date.parse(span.start),
    to: Date.parse(span.end),
    colour: SPAN_COLOURS[index % SPAN_COLOURS.length],
  }));
  return spans;
}

Chart.register({
  id: "spans",
  beforeDatasetsDraw(chart) {
    const x = chart.scales.x;
    if (!spans.length || !x || !x.options.infersightTime) return;
    const { ctx, chartArea } = chart;
    ctx.save();
    for (const span of spans) {
      const left = Math.max(chartArea.left, x.getPixelForValue(span.from));
      const right = Math.min(chartArea.right, x.getPixelForValue(span.to));
      if (right <= left) continue;
      ctx.globalAlpha = 0.12;
      ctx.fillStyle = span.colour;
      ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
    }
    ctx.restore();
  },
});

// Series colours, one per endpoint or series, the same order everywhere.
export const COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#72b7b2"];
export const FLAGGED = "#e45756";

export function formatTime(value) {
  const when = new Date(value);
  if (Number.isNaN(when.getTime())) return String(value);
  return when.toISOString().replace("T", " ").slice(0, 19);
}

// Ticks of a logarithmic axis as 1e-5, not 0.0000100000.
const logTicks = { callback: (value) => Number(value).toExponential(0) };

function timeAxis(title) {
  return {
    type: "linear",
    infersightTime: true,
    title: { display: true, text: title },
    ticks: {
      maxTicksLimit: 6,
      // Within a day the time is enough, to the second; longer spans show the date too.
      callback: (value, index, ticks) => {
        const span = ticks.length > 1 ? ticks[ticks.length - 1].value - ticks[0].value : 0;
        return span < 86400000 ? formatTime(value).slice(11, 19) : formatTime(value).slice(5, 16);
      },
    },
  };
}

function chartIn(container, config) {
  const canvas = document.createElement("canvas");
  container.append(canvas);
  const chart = new Chart(canvas, {
    ...config,
    options: { animation: false, responsive: true, maintainAspectRatio: false, ...config.options },
  });
  canvas.chart = chart;
  return chart;
}

function bucketChart(container, timelines, title, axis, series) {
  const datasets = [];
  timelines.forEach((line, index) => {
    const colour = COLOURS[index % COLOURS.length];
    for (const [name, dash] of series) {
      datasets.push({
        label: series.length > 1 ? `${line.label}: ${name}` : line.label,
        data: line.buckets.map((b) => ({ x: Date.parse(b.start), y: b[name] })),
        borderColor: colour,
        backgroundColor: colour,
        borderDash: dash,
      });
    }
  });
  return chartIn(container, {
    type: "line",
    data: { datasets },
    options: {
      plugins: { title: { display: true, text: title } },
      elements: { point: { radius: 0 } },
      scales: {
        x: timeAxis("bucket start (UTC)"),
        y: { beginAtZero: true, title: { display: true, text: axis } },
      },
    },
  });
}

// Inferences per bucket, one line per endpoint.
export function trafficChart(container, timelines) {
  return bucketChart(container, timelines, "Inferences per bucket", "inferences", [["inferences", []]]);
}

// Flagged inferences per bucket: outliers solid, adversarial dashed, one colour per endpoint.
export function flaggedChart(container, timelines) {
  return bucketChart(container, timelines, "Flagged inferences per bucket", "inferences flagged", [
    ["outliers", []],
    ["adversarial", [6, 3]],
  ]);
}

// Accuracy from feedback per bucket, one line per endpoint; gaps where nothing was labelled.
export function accuracyChart(container, timelines) {
  const datasets = timelines.map((line, index) => ({
    label: line.label,
    data: line.buckets.map((b) => ({
      x: Date.parse(b.start),
      y: b.labelled ? (100 * b.correct) / b.labelled : null,
    })),
    borderColor: COLOURS[index % COLOURS.length],
    spanGaps: false,
  }));
  return chartIn(container, {
    type: "line",
    data: { datasets },
    options: {
      plugins: { title: { display: true, text: "Accuracy of labelled inferences" } },
      scales: {
        x: timeAxis("bucket start (UTC)"),
        y: { min: 0, max: 100, title: { display: true, text: "accuracy (%)" } },
      },
    },
  });
}

// One detector's windows over time: p-values (log scale) or, for online detectors, the statistic;
// the threshold dashed; windows where drift was found in red. onPick(detection) on a click.
export function driftChart(container, title, series, onPick) {
  const online = series.every((s) => s.detections.every((d) => d.p_value === null));
  const value = (d) => (online ? d.statistic : d.p_value);
  const datasets = series.map((s, index) => ({
    type: "line",
    label: s.label,
    data: s.detections.map((d) => ({ x: Date.parse(d.window_end), y: value(d), detection: d })),
    borderColor: COLOURS[index % COLOURS.length],
    pointBackgroundColor: s.detections.map((d) => (d.detected ? FLAGGED : COLOURS[index % COLOURS.length])),
    pointRadius: s.detections.map((d) => (d.detected ? 5 : 3)),
  }));
  const thresholds = series.flatMap((s) => s.detections.map((d) => d.threshold)).filter((t) => t !== null);
  const xs = datasets.flatMap((d) => d.data.map((p) => p.x));
  if (thresholds.length && xs.length) {
    const threshold = thresholds[thresholds.length - 1];
    datasets.push({
      type: "line",
      label: `threshold ${threshold.toPrecision(3)}`,
      data: [
        { x: Math.min(...xs), y: threshold },
        { x: Math.max(...xs), y: threshold },
      ],
      borderColor: "#333",
      borderDash: [5, 5],
      pointRadius: 0,
    });
  }
  datasets.push({ type: "scatter", label: "drift found", data: [], backgroundColor: FLAGGED });
  const positive = datasets.flatMap((d) => d.data.map((p) => p.y)).every((y) => y === null || y > 0);
  return chartIn(container, {
    type: "line",
    data: { datasets },
    options: {
      plugins: { title: { display: true, text: title } },
      onClick: (event, elements, chart) => {
        const hit = elements[0];
        if (!hit) return;
        const point = chart.data.datasets[hit.datasetIndex].data[hit.index];
        if (point.detection) onPick(point.detection);
      },
      scales: {
        x: timeAxis("window end (UTC)"),
        y: {
          type: !online && positive ? "logarithmic" : "linear",
          ticks: !online && positive ? logTicks : {},
          title: { display: true, text: online ? "test statistic (max in window)" : "p-value" },
        },
      },
    },
  });
}

// Per-feature p-values of one window as bars, the threshold as a line.
export function featureChart(container, window) {
  const features = window.features;
  const values = features.map((f) => f.p_value ?? f.statistic);
  const usesP = features.some((f) => f.p_value !== null);
  const logarithmic = usesP && values.every((v) => v === null || v > 0);
  const datasets = [
    {
      type: "bar",
      label: usesP ? "p-value per feature" : "statistic per feature",
      data: values,
      backgroundColor: features.map((f) =>
        usesP && window.threshold !== null && f.p_value !== null && f.p_value < window.threshold
          ? FLAGGED
          : COLOURS[0],
      ),
    },
  ];
  if (window.threshold !== null) {
    datasets.push({
      type: "line",
      label: `threshold ${window.threshold.toPrecision(3)}`,
      data: features.map(() => window.threshold),
      borderColor: "#333",
      borderDash: [5, 5],
      pointRadius: 0,
    });
  }
  return chartIn(container, {
    type: "bar",
    data: { labels: features.map((f) => f.feature), datasets },
    options: {
      plugins: { title: { display: true, text: "Per feature (red: below the threshold)" } },
      scales: {
        x: { title: { display: true, text: "feature" } },
        y: {
          type: logarithmic ? "logarithmic" : "linear",
          ticks: logarithmic ? logTicks : {},
          title: { display: true, text: usesP ? "p-value" : "statistic" },
        },
      },
    },
  });
}

// One feature's reference and window histograms over the same bins, as shares of each.
export function distributionChart(container, distribution) {
  const { edges } = distribution;
  const labels = edges.slice(0, -1).map((edge, i) => ((edge + edges[i + 1]) / 2).toPrecision(3));
  const share = (h) => h.counts.map((c) => (h.count ? (100 * c) / h.count : 0));
  const title = `${distribution.feature}${distribution.p_value !== null ? `  (p = ${distribution.p_value.toPrecision(3)})` : ""}`;
  return chartIn(container, {
    type: "bar",
    data: {
      labels,
      datasets: [
        {
          label: `reference (${distribution.reference.count})`,
          data: share(distribution.reference),
          backgroundColor: "rgba(76,120,168,0.6)",
        },
        {
          label: `window (${distribution.current.count})`,
          data: share(distribution.current),
          backgroundColor: "rgba(228,87,86,0.6)",
        },
      ],
    },
    options: {
      plugins: { title: { display: true, text: title } },
      scales: {
        x: { title: { display: true, text: "value (bin centre)" }, ticks: { maxTicksLimit: 6 } },
        y: { beginAtZero: true, title: { display: true, text: "share of values (%)" } },
      },
    },
  });
}

// A canary's windows: each question's p-value (log scale), the per-question level dashed, the
// windows called different in red.
export function canaryChart(container, verdict) {
  const questions = [
    ["inputs_p", "inputs"],
    ["predictions_p", "predictions"],
    ["outliers_p", "outlier rate"],
    ["accuracy_p", "accuracy"],
  ];
  const level = verdict.p_val / questions.length;
  const datasets = questions.map(([key, label], index) => ({
    label,
    data: verdict.windows.map((w) => ({ x: Date.parse(w.start), y: w[key] === null ? null : Math.max(w[key], 1e-300) })),
    borderColor: COLOURS[index % COLOURS.length],
    pointBackgroundColor: verdict.windows.map((w) => (w.call === "differs" ? FLAGGED : COLOURS[index % COLOURS.length])),
    showLine: false,
    pointRadius: 4,
  }));
  const xs = verdict.windows.map((w) => Date.parse(w.start));
  datasets.push({
    label: `level ${level.toPrecision(2)} per question`,
    data: [
      { x: Math.min(...xs), y: level },
      { x: Math.max(...xs), y: level },
    ],
    borderColor: "#333",
    borderDash: [5, 5],
    pointRadius: 0,
  });
  return chartIn(container, {
    type: "line",
    data: { datasets },
    options: {
      plugins: { title: { display: true, text: `${verdict.candidate} against ${verdict.baseline}, per window` } },
      scales: {
        x: timeAxis("window start (UTC)"),
        y: { type: "logarithmic", ticks: logTicks, title: { display: true, text: "p-value" } },
      },
    },
  });
}

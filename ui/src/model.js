// What a model's page shows, read from the API; the report embeds the same object.

import { all, get } from "./api.js";

function sameModel(row, namespace, inferenceservice) {
  return row.namespace === namespace && row.inferenceservice === inferenceservice;
}

// The span a page covers: an age such as 1h back from the model's last inference, or all of it.
export function span(endpoints, range) {
  const last = Math.max(...endpoints.map((e) => Date.parse(e.last_seen))) + 1000;
  const first = Math.min(...endpoints.map((e) => Date.parse(e.first_seen)));
  const seconds = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800 }[range];
  const start = seconds ? Math.max(first, last - seconds * 1000) : first;
  return { since: new Date(start).toISOString(), until: new Date(last).toISOString() };
}

export async function loadModel(namespace, inferenceservice, range) {
  const models = await get("/models");
  const endpoints = models.filter((m) => sameModel(m, namespace, inferenceservice));
  if (!endpoints.length) return { namespace, inferenceservice, endpoints: [] };
  const { since, until } = span(endpoints, range);
  const model = { namespace, inferenceservice, since, until };
  const timelines = await Promise.all(
    endpoints.map((e) =>
      get("/timeline", { ...model, endpoint: e.endpoint, component: e.component, buckets: 60 }),
    ),
  );
  const [drift, outliers, adversarial, revisions] = await Promise.all([
    all("/detections", { ...model, kind: "drift" }),
    all("/detections", { ...model, kind: "outlier", detected: true }, 500),
    all("/detections", { ...model, kind: "adversarial", detected: true }, 500),
    get("/revisions", model),
  ]);
  const canary = await loadCanary(model, revisions);
  return {
    ...model,
    range,
    endpoints,
    timelines: endpoints.map((e, i) => ({ endpoint: e.endpoint, component: e.component, ...timelines[i] })),
    drift,
    flagged: [...outliers, ...adversarial].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)),
    distributions: {},
    revisions,
    canary,
  };
}

// The canary analysis of the two revisions seen first and last, over about 20 windows of the
// span; null with fewer than two named revisions, an error's message when the API refuses.
async function loadCanary(model, revisions) {
  if (revisions.filter((r) => r.revision).length < 2) return null;
  const seconds = Math.max(60, Math.round((Date.parse(model.until) - Date.parse(model.since)) / 20000));
  try {
    return await get("/canary", { ...model, window_seconds: seconds });
  } catch (error) {
    return { error: String(error.message || error) };
  }
}

export function loadModels() {
  return get("/models");
}

export function loadDistributions(detectionId) {
  return get(`/detections/${encodeURIComponent(detectionId)}/distributions`);
}

export async function loadPayloads(detectionId) {
  const page = await get("/payloads", { detection: detectionId, limit: 20, detail: true });
  return page.items;
}

// Building the page from elements (never from HTML text, so stored values cannot inject markup).

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function table(headers, rows, attributes = {}) {
  return el(
    "table",
    attributes,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))),
    ),
  );
}

export function number(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  if (Math.abs(value) < 1e-3 && value !== 0) return value.toExponential(2);
  return String(Number(value.toPrecision(digits)));
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)} %`;
}

export function modelHref(namespace, inferenceservice) {
  return `#/models/${encodeURIComponent(namespace)}/${encodeURIComponent(inferenceservice)}`;
}

// An endpoint as people read it. Detections with none pooled every endpoint's traffic; an
// inference with none came from a logger that did not name its endpoint.
export function endpointLabel(row) {
  const endpoint = row.endpoint || (row.kind || row.detections ? "all endpoints" : "unnamed endpoint");
  return row.component ? `${endpoint} (${row.component})` : endpoint;
}

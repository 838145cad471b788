// The web UI at /ui (hash routes #/ and #/models/<namespace>/<inferenceservice>), and the report:
// the same pages drawn from data embedded in the file instead of read from the API.

import { ApiError, setToken, token } from "./api.js";
import { el } from "./dom.js";
import { loadDistributions, loadModel, loadModels, loadPayloads } from "./model.js";
import { modelPage, modelsPage } from "./views.js";

const LIVE = { distributions: loadDistributions, payloads: loadPayloads };
const REFRESH_MS = 15000;

function main() {
  return document.getElementById("main");
}

function show(...nodes) {
  main().replaceChildren(...nodes);
  document.body.dataset.ready = "true";
}

function tokenForm(message) {
  const input = el("input", { type: "password", name: "token", placeholder: "bearer token", autocomplete: "off" });
  return el(
    "form",
    {
      class: "token",
      onsubmit: (event) => {
        event.preventDefault();
        setToken(input.value.trim());
        route();
      },
    },
    el("p", {}, message),
    input,
    el("button", { type: "submit" }, "Open"),
  );
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    show(tokenForm(token() ? "That token was refused: enter one of api.auth_tokens." : "This API needs a bearer token (api.auth_tokens)."));
  } else {
    show(el("p", { class: "error" }, `Could not read the API: ${error.message || error}`));
  }
}

let timer = null;
let range = "all";

async function route() {
  clearTimeout(timer);
  document.body.dataset.ready = "false";
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "models" && parts.length === 3) {
      const data = await loadModel(parts[1], parts[2], range);
      show(modelPage(data, LIVE, (chosen) => {
        range = chosen;
        route();
      }));
    } else {
      show(modelsPage(await loadModels()));
      timer = setTimeout(route, REFRESH_MS);
    }
  } catch (error) {
    failed(error);
  }
}

function report(data) {
  const sources = {
    distributions: async (id) => data.distributions[id] || null,
    payloads: async (id) => data.payloads[id] || null,
  };
  show(modelPage(data, sources, null));
}

const embedded = document.getElementById("report-data");
if (embedded) {
  report(JSON.parse(embedded.textContent));
} else {
  window.addEventListener("hashchange", route);
  route();
}

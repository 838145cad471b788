// Reading the query API: the bearer token the user gave, and one error type for what it refused.

const TOKEN_KEY = "infersight.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    // An empty string is kept: endpoint= asks for inferences whose logger named no endpoint.
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// GET a /v1 path relative to the page (the UI is served at <base>/ui/), as JSON.
export async function get(path, params = {}) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const answer = await fetch(`../v1${path}${query(params)}`, { headers });
  if (!answer.ok) {
    let message = `${answer.status} ${answer.statusText}`;
    try {
      message = (await answer.json()).error || message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(answer.status, message);
  }
  return answer.json();
}

// Every page of a paged route, up to `most` items.
export async function all(path, params, most = 5000) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...params, limit: 1000, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < most);
  return items;
}

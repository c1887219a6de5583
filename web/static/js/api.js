// The REST client: same-origin fetches with the session cookie, errors as ApiError.

/** A refusal or failure, with the API's error JSON ({status, code, message, ...}). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status; // 0: the request never got an answer (network down)
    this.code = (body && body.code) || (status === 0 ? "network_error" : "http_error");
    this.body = body || {};
  }
}

const listeners = new Set();

/** `fn()` is called whenever a request answers 401: the session expired or was revoked. */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

async function request(method, path, { query, body } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === "") continue;
      params.append(key, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    cache: "no-store",
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (exc) {
    throw new ApiError(0, { code: "network_error", message: "the server cannot be reached" });
  }
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) {
    try {
      data = await response.json();
    } catch (exc) {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/session") listeners.forEach((fn) => fn());
    throw new ApiError(response.status, data);
  }
  return data;
}

export const api = {
  session: () => request("GET", "/api/session"),
  logIn: (token) => request("POST", "/api/session", { body: { token } }),
  logOut: () => request("DELETE", "/api/session"),
  customers: (query) => request("GET", "/api/customers", { query }),
  routers: () => request("GET", "/api/routers"),
  status: () => request("GET", "/api/monitor/status"),
  start: (customerId) => request("POST", "/api/monitor/start", { query: { customer_id: customerId } }),
  stop: (customerId) => request("POST", "/api/monitor/stop", { query: { customer_id: customerId } }),
  traffic: (customerId, query) =>
    request("GET", `/api/customers/${encodeURIComponent(customerId)}/traffic`, { query }),
};

/** The CSV export of a customer's retained samples (a plain link: the cookie goes along). */
export function csvUrl(customerId) {
  return `/api/customers/${encodeURIComponent(customerId)}/traffic.csv`;
}

// The REST client: same-origin fetches with the session cookie, errors as ApiError.
//
// The shapes below are the parts of the API's answers (web/schemas.py) that the page
// reads; the checker holds the modules to them.

/**
 * The API's error JSON: `code` and `message`, and the fields some refusals add.
 * @typedef {object} ErrorBody
 * @property {string} [code]
 * @property {string} [message]
 * @property {string} [customer_status]
 * @property {"global" | "router"} [scope]
 * @property {number} [cap]
 * @property {number} [in_use]
 * @property {number} [retry_after]
 * @property {string} [router_id]
 * @property {string} [router_name]
 */

/**
 * A customer as GET /api/customers lists it.
 * @typedef {object} Customer
 * @property {string} id
 * @property {string} name
 * @property {string} username
 * @property {string} mikrotik_id
 * @property {string} service_type
 * @property {string} status
 * @property {string | null} [pppoe_username]
 * @property {string | null} [hotspot_username]
 * @property {boolean} monitored
 * @property {string | null} monitor_state
 */

/**
 * One open monitor session in GET /api/monitor/status.
 * @typedef {object} Monitor
 * @property {string} customer_id
 * @property {string} customer_name
 * @property {string} username
 * @property {string} router
 * @property {string} state
 * @property {string | null} started_at
 * @property {string | null} created_at
 */

/**
 * @typedef {object} MonitorStatus
 * @property {number} monitor_count
 * @property {number} max_concurrent
 * @property {number} slots_available
 * @property {Monitor[]} monitors
 */

/**
 * @typedef {object} Router
 * @property {string} id
 * @property {string} name
 * @property {string} host
 * @property {number} port
 * @property {number} monitors_open
 * @property {number} monitors_running
 */

/**
 * One stream entry (tasks/message.py decode_entry), from the backfill or the feed.
 * Traffic entries carry the rates; status entries (started, offline, ...) a reason.
 * @typedef {object} Entry
 * @property {string} id
 * @property {string} type
 * @property {string} customer_id
 * @property {string} [session_id]
 * @property {string} [service_type]
 * @property {string | null} [reason]
 * @property {number} [download_bps]
 * @property {number} [upload_bps]
 * @property {number | null} [package_download_bps]
 * @property {number | null} [package_upload_bps]
 * @property {number | null} [download_utilization]
 * @property {number | null} [upload_utilization]
 * @property {string} [router] a router watch's entry (top, session_up, session_down): its router
 * @property {number} [online] a top frame's totals
 * @property {number} [unknown]
 * @property {number} [customers]
 * @property {number} [interval_ms]
 * @property {TopRow[]} [top] a top frame's customers, by download
 * @property {string} [name] a session event's login
 * @property {string} [session] a session event's kind: pppoe or hotspot
 * @property {number | null} [rtt_ms] a latency entry's RTT (null: lost); a sample's newest RTT
 * @property {string | null} [status] a latency entry's router words when lost ("timeout")
 * @property {number | null} [loss_pct] a latency entry's loss over the last 10 probes
 * @property {string} [ping] a started event's ping: "on", "off", "no address" or "capped"
 * @property {string} [alert_id] an alert event's (alert_firing, alert_resolved, alert_acknowledged)
 * @property {number} [rule_id]
 * @property {string} [rule_name]
 * @property {string} [kind] an alert's rule kind
 * @property {string} [subject] an alert's: "customer:<uuid>" or "router:<id>"
 * @property {string | null} [customer_name]
 * @property {string | null} [username]
 * @property {string} [summary]
 * @property {string} [started_at]
 * @property {string | null} [resolved_at]
 * @property {string | null} [acknowledged_by]
 * @property {string} [timestamp]
 */

/**
 * An alert (GET /api/alerts, POST /api/alerts/{id}/acknowledge).
 * @typedef {object} Alert
 * @property {string} id
 * @property {number} rule_id
 * @property {string} rule_name
 * @property {string} kind
 * @property {string} subject "customer:<uuid>" or "router:<id>"
 * @property {string | null} customer_id
 * @property {string | null} customer_name
 * @property {string | null} username
 * @property {string | null} router
 * @property {"firing" | "resolved"} state
 * @property {string} started_at
 * @property {string | null} resolved_at
 * @property {string | null} acknowledged_at
 * @property {string | null} acknowledged_by
 * @property {string} summary
 */
/** @typedef {{ alerts: Alert[]; total: number; limit: number; offset: number }} AlertList */

/**
 * One direction of a session report.
 * @typedef {object} ReportRates
 * @property {number | null} peak_bps
 * @property {number | null} avg_bps
 * @property {number | null} p95_bps
 * @property {number | null} bytes
 * @property {number | null} at_plan_s seconds at 90 % of plan or more (null: no plan)
 */

/**
 * A monitor session's report (GET /api/sessions/{id}; the items of a customer's sessions).
 * @typedef {object} Report
 * @property {string} session_id
 * @property {string} customer_id
 * @property {string} username
 * @property {string} customer_name
 * @property {string} router
 * @property {string | null} interface
 * @property {string} started_at
 * @property {string | null} ended_at
 * @property {number | null} duration_s
 * @property {number | null} interval_s
 * @property {number} samples
 * @property {number} missing_s
 * @property {string | null} stop_reason
 * @property {boolean} partial
 * @property {string | null} package
 * @property {ReportRates} download
 * @property {ReportRates} upload
 * @property {{ probes: number; answered: number; loss_pct: number | null; median_ms: number | null;
 *   p95_ms: number | null; idle_median_ms: number | null; idle_p95_ms: number | null;
 *   load_median_ms: number | null; load_p95_ms: number | null }} rtt
 * @property {string | null} verdict
 */
/** @typedef {{ items: Report[]; total: number; limit: number; offset: number }} ReportList */

/**
 * One customer of a router's top (GET /api/routers/{id}/top, and a top frame's list).
 * @typedef {object} TopRow
 * @property {string} customer_id
 * @property {string} customer_name
 * @property {string} username
 * @property {string} service_type
 * @property {number} download_bps
 * @property {number} upload_bps
 * @property {number | null} download_utilization percent of the package
 * @property {number | null} upload_utilization
 * @property {number | null} package_download_bps
 * @property {number | null} package_upload_bps
 * @property {boolean} monitored
 */

/**
 * What every router-view answer starts with (and a top frame's totals).
 * @typedef {object} RouterViewHead
 * @property {string} router
 * @property {string} router_name
 * @property {boolean} available
 * @property {string | null} reason
 * @property {number | null} age_s
 */

/**
 * @typedef {RouterViewHead & {
 *   frame_id: string | null; online: number | null; unknown: number | null;
 *   customers: number | null; download_bps: number | null; upload_bps: number | null;
 *   interval_ms: number | null; by: string; top: TopRow[] }} RouterTop
 */

/**
 * An online session (GET /api/routers/{id}/sessions; `customer` null when unknown).
 * @typedef {object} RouterSession
 * @property {"pppoe" | "hotspot"} session
 * @property {string} name
 * @property {string | null} address
 * @property {string | null} caller_id
 * @property {number | null} uptime_s
 * @property {number | null} download_bps
 * @property {number | null} upload_bps
 * @property {{ id: string; name: string; username: string; service_type: string } | null} [customer]
 */

/**
 * @typedef {RouterViewHead & { total: number; limit: number; offset: number; sessions: RouterSession[] }}
 *   RouterSessions
 */
/** @typedef {RouterViewHead & { count: number; sessions: RouterSession[] }} RouterUnknownSessions */

/**
 * @typedef {{ auth: "enabled" | "disabled"; authenticated: boolean;
 *   diagnosis?: import("./verdict.js").Thresholds }} SessionStatus
 */
/**
 * total: exact unless total_capped, then a lower bound (GET /api/customers counts up to
 * 1,000 matches past the page's end).
 * @typedef {{ customers: Customer[]; total: number; total_capped?: boolean }} CustomerList
 */
/** @typedef {{ routers: Router[] }} Routers */
/** @typedef {{ entries: Entry[]; more: boolean; next: string | null }} Traffic */
/** @typedef {Record<string, string | number | boolean | null | undefined>} Query */

/** A refusal or failure, with the API's error JSON ({status, code, message, ...}). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {ErrorBody | null} body
   */
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status; // 0: the request never got an answer (network down)
    this.code = (body && body.code) || (status === 0 ? "network_error" : "http_error");
    this.body = body || {};
  }
}

/** @type {Set<() => void>} */
const listeners = new Set();

/**
 * `fn()` is called whenever a request answers 401: the session expired or was revoked.
 * @param {() => void} fn
 */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

/**
 * The answer's JSON (null when it has none); an ApiError when it is not a success.
 * @param {string} method
 * @param {string} path
 * @param {{ query?: Query; body?: unknown }} [options]
 * @returns {Promise<any>}
 */
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
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  /** @type {RequestInit} */
  const init = {
    method,
    credentials: "same-origin",
    headers,
    cache: "no-store",
  };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
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
  /** @returns {Promise<SessionStatus>} */
  session: () => request("GET", "/api/session"),
  /** @param {string} token */
  logIn: (token) => request("POST", "/api/session", { body: { token } }),
  logOut: () => request("DELETE", "/api/session"),
  /**
   * @param {Query} query
   * @returns {Promise<CustomerList>}
   */
  customers: (query) => request("GET", "/api/customers", { query }),
  /** @returns {Promise<Routers>} */
  routers: () => request("GET", "/api/routers"),
  /**
   * @param {string} routerId
   * @param {Query} query by, limit
   * @returns {Promise<RouterTop>}
   */
  routerTop: (routerId, query) => request("GET", `/api/routers/${encodeURIComponent(routerId)}/top`, { query }),
  /**
   * @param {string} routerId
   * @param {Query} query q, limit, offset
   * @returns {Promise<RouterSessions>}
   */
  routerSessions: (routerId, query) =>
    request("GET", `/api/routers/${encodeURIComponent(routerId)}/sessions`, { query }),
  /**
   * @param {string} routerId
   * @returns {Promise<RouterUnknownSessions>}
   */
  routerUnknown: (routerId) => request("GET", `/api/routers/${encodeURIComponent(routerId)}/unknown-sessions`),
  /** @returns {Promise<MonitorStatus>} */
  status: () => request("GET", "/api/monitor/status"),
  /** @param {string} customerId */
  start: (customerId) => request("POST", "/api/monitor/start", { query: { customer_id: customerId } }),
  /** @param {string} customerId */
  stop: (customerId) => request("POST", "/api/monitor/stop", { query: { customer_id: customerId } }),
  /**
   * @param {string} customerId
   * @param {Query} query
   * @returns {Promise<Traffic>}
   */
  traffic: (customerId, query) =>
    request("GET", `/api/customers/${encodeURIComponent(customerId)}/traffic`, { query }),
  /**
   * A customer's past monitor sessions, newest first.
   * @param {string} customerId
   * @param {Query} query limit, offset
   * @returns {Promise<ReportList>}
   */
  customerSessions: (customerId, query) =>
    request("GET", `/api/customers/${encodeURIComponent(customerId)}/sessions`, { query }),
  /**
   * @param {string} sessionId
   * @returns {Promise<Report>}
   */
  report: (sessionId) => request("GET", `/api/sessions/${encodeURIComponent(sessionId)}`),
  /**
   * @param {Query} query state (open, resolved, all), limit, offset
   * @returns {Promise<AlertList>}
   */
  alerts: (query) => request("GET", "/api/alerts", { query }),
  /**
   * @param {string} alertId
   * @returns {Promise<{ alert: Alert }>}
   */
  acknowledgeAlert: (alertId) => request("POST", `/api/alerts/${encodeURIComponent(alertId)}/acknowledge`),
};

/**
 * The CSV of a customer's past sessions' reports.
 * @param {string} customerId
 */
export function sessionsCsvUrl(customerId) {
  return `/api/customers/${encodeURIComponent(customerId)}/sessions?format=csv`;
}

/**
 * The CSV of one session's report.
 * @param {string} sessionId
 */
export function reportCsvUrl(sessionId) {
  return `/api/sessions/${encodeURIComponent(sessionId)}?format=csv`;
}

/**
 * The CSV export of a customer's retained samples (a plain link: the cookie goes along).
 * @param {string} customerId
 */
export function csvUrl(customerId) {
  return `/api/customers/${encodeURIComponent(customerId)}/traffic.csv`;
}

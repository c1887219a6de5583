// The API's refusals in words an operator can act on (the error JSON's code and fields).

import { formatCount } from "./format.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").ErrorBody} ErrorBody */

/** @param {ErrorBody} body */
function retry(body) {
  const seconds = Number(body.retry_after);
  return Number.isFinite(seconds) && seconds > 0 ? ` Try again in ${formatCount(seconds)} s.` : "";
}

/**
 * `error`: an ApiError; `customer`: {name, username, status} when known.
 * Returns one sentence (or two) for the operator.
 * @param {ApiError} error
 * @param {{ name?: string; username?: string; status?: string }} [customer]
 * @returns {string}
 */
export function describeRefusal(error, customer = {}) {
  const body = error.body || {};
  const who = customer.name || customer.username || "This customer";
  switch (error.code) {
    case "capacity_exceeded": {
      const cap = formatCount(body.cap);
      const used = formatCount(body.in_use);
      if (body.scope === "router") {
        const router = body.router_name || body.router_id || "its router";
        const id = body.router_id && body.router_id !== router ? ` (${body.router_id})` : "";
        return (
          `Router ${router}${id} is at its limit: all ${cap} of its monitor slots are in use ` +
          `(${used} of ${cap}). Stop a monitor on that router first.${retry(body)}`
        );
      }
      return (
        `All ${cap} monitor slots are in use (${used} of ${cap}). ` +
        `Stop another monitor first.${retry(body)}`
      );
    }
    case "customer_not_active": {
      const status = body.customer_status || customer.status || "not active";
      return `${who} is ${status}: only active customers can be monitored.`;
    }
    case "customer_not_monitorable":
      if (/no pppoe_username/.test(error.message)) {
        return `${who} has no PPPoE username, so there is no interface to watch. Add it to the customer first.`;
      }
      if (/no static_ip/.test(error.message)) {
        return `${who} has no static IP, so there is no queue to watch. Add it to the customer first.`;
      }
      return `Cannot monitor ${who}: ${error.message}.`;
    case "customer_not_found":
      return `${who} no longer exists.`;
    case "not_monitored":
      return `${who} is not monitored (any more).`;
    case "already_monitored":
      return `${who} is already monitored by another running monitor.`;
    case "monitoring_disabled":
      return "Monitoring is switched off on the server (ENABLE_TRAFFIC_MONITOR=false).";
    case "storage_full":
      return `Redis is out of memory: no monitor can start until memory is freed.${retry(body)}`;
    case "database_unavailable":
      return "The database is unavailable: try again in a moment.";
    case "redis_unavailable":
      return "Redis is unavailable: try again in a moment.";
    case "broker_unavailable":
    case "start_failed":
      return "The monitor could not be handed to a worker (message broker trouble): try again in a moment.";
    case "unauthorized":
      return "Your session has ended: log in again.";
    case "network_error":
      return "The server cannot be reached: check the connection.";
    default:
      return error.message || "The server refused the request.";
  }
}

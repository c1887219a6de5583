// The header: monitors and free slots, the live feed's state, the open alerts, and every
// router with its state (from /api/routers and what the panels' events say about it).

import { el, find } from "./dom.js";
import { formatCount } from "./format.js";

/** @typedef {import("./api.js").MonitorStatus} MonitorStatus */
/** @typedef {import("./api.js").Router} Router */
/** @typedef {{ state: string; reason: string }} RouterTrouble */

/** @type {Record<string, string>} */
const FEED_WORDS = {
  idle: "idle",
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline",
};

export class Header {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.monitors = find(root, "#monitor-count", HTMLElement);
    this.slots = find(root, "#slot-count", HTMLElement);
    this.feed = find(root, "#feed-state", HTMLElement);
    this.alerts = find(root, "#alert-count", HTMLAnchorElement);
    this.routers = find(root, "#router-list", HTMLElement);
  }

  /** @param {MonitorStatus} status */
  setStatus(status) {
    const count = status.monitor_count;
    this.monitors.textContent = `${formatCount(count)} monitored`;
    this.slots.textContent = `${formatCount(status.slots_available)} of ${formatCount(status.max_concurrent)} slots free`;
    this.slots.classList.toggle("warn", status.slots_available === 0);
  }

  /**
   * @param {string} state
   * @param {string} [detail]
   */
  setFeed(state, detail) {
    this.feed.textContent = `Live feed: ${FEED_WORDS[state] || state}`;
    this.feed.title = detail || "";
    this.feed.className = `pill feed-${state}`;
  }

  /**
   * The open alerts' badge: red while any is unacknowledged, amber when all are.
   * @param {number} open
   * @param {number} unacknowledged
   */
  setAlerts(open, unacknowledged) {
    const text = `${formatCount(open)} open alert${open === 1 ? "" : "s"}`;
    if (this.alerts.textContent !== text) this.alerts.textContent = text;
    const state = unacknowledged > 0 ? "alerts-unacked" : open > 0 ? "alerts-acked" : "alerts-none";
    this.alerts.className = `pill ${state}`;
    this.alerts.title = unacknowledged > 0 ? `${formatCount(unacknowledged)} not acknowledged` : "";
  }

  /**
   * routers: /api/routers; troubles: router id -> {state, reason} from the panels.
   * @param {Router[]} routers
   * @param {Map<string, RouterTrouble>} troubles
   */
  setRouters(routers, troubles) {
    const items = routers.map((router) => {
      const trouble = troubles.get(router.id);
      let state = router.monitors_running > 0 ? "ok" : router.monitors_open > 0 ? "waiting" : "idle";
      let words = router.monitors_open
        ? `${formatCount(router.monitors_running)} of ${formatCount(router.monitors_open)} running`
        : "no monitor";
      if (trouble) {
        state = trouble.state;
        words = trouble.state === "unreachable" ? "unreachable" : "reconnecting";
      }
      const li = el("li", `router router-${state}`);
      li.title = trouble ? trouble.reason : `${router.host}:${router.port}`;
      li.append(el("span", "dot"), el("span", "router-name", router.name || router.id));
      if (router.name && router.name !== router.id) li.append(el("span", "router-id", router.id));
      li.append(el("span", "router-state", words));
      return li;
    });
    this.routers.replaceChildren(...items);
  }
}

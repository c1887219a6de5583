// The header: monitors and free slots, the live feed's state, and every router with
// its state (from /api/routers and what the panels' events say about it).

import { formatCount } from "./format.js";

const FEED_WORDS = {
  idle: "idle",
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Header {
  constructor(root) {
    this.monitors = root.querySelector("#monitor-count");
    this.slots = root.querySelector("#slot-count");
    this.feed = root.querySelector("#feed-state");
    this.routers = root.querySelector("#router-list");
  }

  setStatus(status) {
    const count = status.monitor_count;
    this.monitors.textContent = `${formatCount(count)} monitored`;
    this.slots.textContent = `${formatCount(status.slots_available)} of ${formatCount(status.max_concurrent)} slots free`;
    this.slots.classList.toggle("warn", status.slots_available === 0);
  }

  setFeed(state, detail) {
    this.feed.textContent = `Live feed: ${FEED_WORDS[state] || state}`;
    this.feed.title = detail || "";
    this.feed.className = `pill feed-${state}`;
  }

  /** routers: /api/routers; troubles: router id -> {state, reason} from the panels. */
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

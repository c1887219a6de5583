// The dashboard's wiring: login, the customer list, one panel per monitored customer,
// the alerts, the router view, one live feed for all of them, and the header. Polls /api/monitor/status and
// /api/routers every POLL_MS while the tab is visible.

import { AlertList, isAlertEntry } from "./alerts.js";
import { api, onUnauthorized } from "./api.js";
import { CustomerList } from "./customers.js";
import { find } from "./dom.js";
import { LiveFeed } from "./feed.js";
import { onVisibility, schedule } from "./frame.js";
import { Header } from "./header.js";
import { Login } from "./login.js";
import { Panel, routerTrouble } from "./panel.js";
import { RouterView } from "./router.js";
import { setThresholds } from "./verdict.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Monitor} Monitor */
/** @typedef {import("./api.js").Router} Router */
/** @typedef {import("./header.js").RouterTrouble} RouterTrouble */

// The router watches' entries go to the router view, never to a customer's panel.
const ROUTER_ENTRIES = new Set(["top", "session_up", "session_down"]);

const POLL_MS = 5000;
const TICK_MS = 1000;

const appRoot = find(document, "#app", HTMLElement);
const panelsRoot = find(document, "#panels", HTMLElement);
const emptyNote = find(document, "#panels-empty", HTMLElement);
const notice = find(document, "#notice", HTMLElement);
const logoutButton = find(document, "#logout", HTMLButtonElement);

/** @type {Map<string, Panel>} customer id -> Panel */
const panels = new Map();
let authEnabled = false;
let running = false;
/** @type {number | undefined} */
let pollTimer;
/** @type {number | undefined} */
let tickTimer;
/** @type {Router[]} */
let routers = [];
let monitored = ""; // the ids of the monitored customers, as the list last showed them

const header = new Header(find(document, "#top", HTMLElement));

const feed = new LiveFeed({
  onEntry(entry) {
    // Before the panels: a customer's alert carries its customer_id, but is no sample.
    if (isAlertEntry(entry)) {
      alertList.receive(entry);
      return;
    }
    if (ROUTER_ENTRIES.has(entry.type)) {
      routerView.receive(entry);
      return;
    }
    const panel = panels.get(entry.customer_id);
    if (panel) panel.receive(entry);
  },
  onGap(frame) {
    // A session's hole (a Redis failover, a failed publish) names its customer; a resume
    // gap (entries expired) concerns every panel.
    for (const [id, panel] of panels) {
      if (!frame.customer_id || id === frame.customer_id) panel.gap(frame.from, frame.to);
    }
  },
  onOpen(customers, resumed) {
    // Alert events from before this connection may be missed (a first connection has no
    // cursor; a resume's may be older than the alerts stream keeps): read the open ones.
    alertList.load();
    for (const id of customers) {
      const panel = panels.get(id);
      if (!panel) continue;
      // Without a cursor this connection started live: every panel reads the stream again.
      if (!resumed) panel.rebackfill();
      if (panel.backfillState === "waiting") panel.backfill();
    }
  },
  onState(state, detail) {
    header.setFeed(state, detail);
  },
  async onRefused() {
    try {
      const session = await api.session();
      if (session.auth === "enabled" && !session.authenticated) loggedOut("Your session has ended: log in again.");
    } catch (exc) {
      /* the server is away: the feed keeps trying */
    }
  },
});

const list = new CustomerList(find(document, "#customers", HTMLElement), {
  async start(customer) {
    await api.start(customer.id);
    await refreshStatus();
  },
  async stop(customer) {
    await api.stop(customer.id);
    const panel = panels.get(customer.id);
    if (panel) panel.markStopping();
    await refreshStatus();
  },
});

/**
 * A customer's live panel, from the router view or an alert: start its monitor unless it
 * runs, then bring the panel into view. A refusal is thrown for the caller to say.
 * @param {{ id: string; name: string }} customer
 */
async function showCustomer(customer) {
  const shown = panels.get(customer.id);
  if (!shown || !shown.monitored) {
    try {
      await api.start(customer.id);
    } catch (exc) {
      // Started meanwhile (here or elsewhere): showing its panel is what was asked.
      if (/** @type {ApiError} */ (exc).code !== "already_monitored") throw exc;
    }
    await refreshStatus();
  }
  const panel = panels.get(customer.id);
  if (panel) reveal(panel);
}

const routerView = new RouterView(find(document, "#router-view", HTMLElement), {
  open: showCustomer,
  hasPanel(customerId) {
    const panel = panels.get(customerId);
    return panel !== undefined && panel.monitored;
  },
});
routerView.onChoose = (/** @type {string | null} */ id) => feed.setRouter(id);

const alertList = new AlertList(find(document, "#alerts", HTMLElement), {
  openCustomer: showCustomer,
  openRouter(routerId) {
    routerView.show(routerId);
  },
  onCount(open, unacknowledged) {
    header.setAlerts(open, unacknowledged);
  },
});

/**
 * Bring a panel into view and mark it for a moment (a click in the router view).
 * @param {Panel} panel
 */
function reveal(panel) {
  panel.element.scrollIntoView({ block: "nearest", behavior: "smooth" });
  panel.element.classList.remove("is-revealed");
  void panel.element.offsetWidth; // restart the animation
  panel.element.classList.add("is-revealed");
}

const login = new Login(find(document, "#login", HTMLElement), () => startApp());

/** @param {string} text */
function say(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

/** @param {Monitor} monitor */
function openPanel(monitor) {
  /** @type {Partial<import("./api.js").Customer>} */
  const known = list.known.get(monitor.customer_id) || {};
  const customer = {
    id: monitor.customer_id,
    name: monitor.customer_name || known.name,
    username: monitor.username || known.username,
    service_type: known.service_type,
    router: monitor.router || known.mikrotik_id,
  };
  const panel = new Panel(customer, monitor, {
    async stop(p) {
      p.stopButton.disabled = true;
      try {
        await api.stop(p.id);
        p.markStopping();
        say("");
      } catch (exc) {
        const error = /** @type {ApiError} */ (exc);
        if (error.code === "not_monitored") p.updateMonitor(null);
        else say(`Could not stop ${p.customer.name}: ${error.message}`);
      } finally {
        p.stopButton.disabled = false;
      }
      refreshStatus();
      list.load();
    },
    close(p) {
      closePanel(p.id);
    },
  });
  panels.set(panel.id, panel);
  panelsRoot.append(panel.element);
  return panel;
}

/** @param {string} id */
function closePanel(id) {
  const panel = panels.get(id);
  if (!panel) return;
  panels.delete(id);
  panel.destroy();
  syncFeed();
}

function syncFeed() {
  emptyNote.hidden = panels.size > 0;
  feed.setCustomers([...panels.keys()]);
}

function routerTroubles() {
  /** @type {Map<string, RouterTrouble>} */
  const troubles = new Map();
  for (const panel of panels.values()) {
    const router = panel.customer.router;
    if (!router) continue;
    if (panel.state === "offline" && routerTrouble(panel.reason)) {
      troubles.set(router, { state: "unreachable", reason: panel.reason });
    } else if (panel.state === "reconnecting" && !troubles.has(router)) {
      troubles.set(router, { state: "reconnecting", reason: panel.reason });
    }
  }
  return troubles;
}

async function refreshStatus() {
  let status;
  try {
    status = await api.status();
  } catch (exc) {
    const error = /** @type {ApiError} */ (exc);
    if (error.status !== 401) say(`Status unavailable: ${error.message}`);
    return;
  }
  say("");
  header.setStatus(status);
  const monitors = new Map(status.monitors.map((m) => [m.customer_id, m]));
  for (const monitor of status.monitors) {
    if (!panels.has(monitor.customer_id)) openPanel(monitor);
  }
  for (const panel of panels.values()) panel.updateMonitor(monitors.get(panel.id) || null);
  syncFeed();
  // Someone (here, another operator, the reconciler) started or stopped a monitor:
  // the list's Start/Stop buttons follow.
  const monitoredNow = [...monitors.keys()].sort().join();
  if (monitoredNow !== monitored) {
    monitored = monitoredNow;
    list.load();
  }
  await refreshRouters();
}

async function refreshRouters() {
  try {
    routers = (await api.routers()).routers;
  } catch (exc) {
    return;
  }
  list.setRouters(routers);
  routerView.setRouters(routers);
  header.setRouters(routers, routerTroubles());
}

function poll() {
  if (!running || document.hidden || !navigator.onLine) return;
  refreshStatus();
  routerView.refresh();
}

function tick() {
  // The charts' time axis slides even when no sample arrives (an offline customer).
  if (!running || document.hidden) return;
  for (const panel of panels.values()) schedule(panel);
  routerView.tick();
  header.setRouters(routers, routerTroubles());
}

async function startApp() {
  login.hide();
  appRoot.hidden = false;
  logoutButton.hidden = !authEnabled;
  running = true;
  await list.search();
  await refreshStatus();
  feed.start();
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  pollTimer = setInterval(poll, POLL_MS);
  tickTimer = setInterval(tick, TICK_MS);
}

/** @param {string} message */
function loggedOut(message) {
  running = false;
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  feed.stop();
  for (const [id, panel] of [...panels]) {
    panel.destroy();
    panels.delete(id);
  }
  appRoot.hidden = true;
  login.show(message);
}

logoutButton.addEventListener("click", async () => {
  try {
    await api.logOut();
  } catch (exc) {
    /* the cookie is gone anyway once it expires; show the form regardless */
  }
  loggedOut("");
});

onUnauthorized(() => {
  if (authEnabled && running) loggedOut("Your session has ended: log in again.");
});

onVisibility((hidden) => {
  if (!hidden) poll();
});

async function boot() {
  let session;
  try {
    session = await api.session();
  } catch (exc) {
    say(`The server cannot be reached (${/** @type {ApiError} */ (exc).message}); retrying…`);
    setTimeout(boot, 3000);
    return;
  }
  say("");
  setThresholds(session.diagnosis);
  authEnabled = session.auth === "enabled";
  if (authEnabled && !session.authenticated) loggedOut("");
  else startApp();
}

// A read-only view of the page's state, for people debugging a wall and for tests.
Object.defineProperty(window, "__dashboard", {
  value: Object.freeze({
    snapshot: () => ({
      feed: feed.snapshot(),
      panels: Object.fromEntries([...panels].map(([id, panel]) => [id, panel.snapshot()])),
      router: routerView.snapshot(),
      alerts: alertList.snapshot(),
    }),
  }),
});

boot();

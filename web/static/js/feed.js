// The live feed: ONE WebSocket to /ws for every panel, filtered by their customers (their
// samples, status events and ping: `types=traffic,events,latency`), for the router
// view's router (its top frames and session events, `types=top,sessions`), and for the
// alerts (every one, whatever the customers: `types=alerts`). With alerts to follow, the
// feed is open whenever the page runs, even with no panel and no router.
//
// - Resume: the feed remembers the id of the last entry it handed on (`cursor`); every
//   new connection asks for `last_id=<cursor>`, so the server replays what was missed
//   (nothing twice: panels drop ids they already took) and the charts have no hole.
// - Gaps: a `{"type":"gap"}` frame means entries after the cursor expired before we
//   came back (every panel draws it), or, with `customer_id`, that one session's
//   entries were lost (a Redis failover, a refused publish: that panel draws it).
// - Dead feeds: the server sends `{"type":"ping"}` every WS_PING_INTERVAL seconds. The
//   watchdog learns that interval, pings the server itself when the line is quiet,
//   and gives the socket up when nothing at all arrived for too long (a network that
//   vanished closes nothing: only silence tells).
// - Reconnect: by itself, with backoff and jitter, at once when the browser comes
//   back online or the server closed a slow client (1013).

import { observeServerTime } from "./frame.js";

/** @typedef {import("./api.js").Entry} Entry */
/** @typedef {{ type: "gap"; from: string; to: string; customer_id?: string }} Gap */
/**
 * @typedef {object} FeedHandlers
 * @property {(entry: Entry) => void} onEntry
 * @property {(frame: Gap) => void} onGap
 * @property {(customerIds: string[], resumed: boolean) => void} onOpen
 * @property {(state: string, detail: string) => void} onState
 * @property {() => void} onRefused
 */

const BACKOFF_FIRST = 500;
const BACKOFF_MAX = 10000;
const PROBE_AFTER_MAX = 5000;

export class LiveFeed {
  /**
   * handlers: onEntry(entry), onGap(frame), onOpen(customerIds), onState(state, detail),
   * onRefused() (the handshake failed twice in a row: perhaps the session ended).
   * @param {FeedHandlers} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    /** @type {Set<string>} */
    this.customers = new Set();
    /** @type {string | null} the router whose top frames and session events to follow */
    this.router = null;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {string | null} */
    this.cursor = null;
    this.state = "idle";
    this.detail = "";
    this.attempt = 0;
    this.failedHandshakes = 0;
    /** @type {number | undefined} */
    this.timer = undefined;
    this.lastMessageAt = 0;
    /** @type {number | null} */
    this.lastPingAt = null;
    /** @type {number | null} learned from the server's pings (ms) */
    this.pingInterval = null;
    /** @type {number[]} */
    this.pingGaps = [];
    this.lastProbeAt = 0;
    this.connects = 0;
    this.deadFeeds = 0;
    this.stopped = true;
    this.watchdog = setInterval(() => this.watch(), 500);
    window.addEventListener("online", () => {
      if (!this.stopped && this.state !== "live") this.connectSoon(0);
    });
    window.addEventListener("offline", () => {
      if (!this.stopped && this.state !== "idle") this.setState("offline", "the browser is offline");
    });
  }

  /**
   * Follow exactly these customers (a new set reconnects, resuming from the cursor).
   * @param {string[]} ids
   */
  setCustomers(ids) {
    const next = new Set(ids);
    const same = next.size === this.customers.size && [...next].every((id) => this.customers.has(id));
    if (same) return;
    this.customers = next;
    if (this.stopped) return;
    this.connectSoon(30); // coalesce several panels opened at once
  }

  /**
   * Follow this router's watch too (null: none); a change reconnects, resuming.
   * @param {string | null} id
   */
  setRouter(id) {
    if (id === this.router) return;
    this.router = id;
    if (this.stopped) return;
    this.connectSoon(30);
  }

  start() {
    this.stopped = false;
    this.connectSoon(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop();
    this.cursor = null; // the next start (after a new login) reads the panels' history afresh
    this.setState("idle", "");
  }

  /**
   * @param {string} state
   * @param {string} detail
   */
  setState(state, detail) {
    if (state === this.state && detail === this.detail) return;
    this.state = state;
    this.detail = detail;
    this.handlers.onState(state, detail);
  }

  /** @param {number} delay ms */
  connectSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Forget the current socket without waiting for its close (it may never come). */
  drop() {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(1000, "changing subscription");
    } catch (exc) {
      /* already closed */
    }
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams();
    for (const id of this.customers) params.append("customer_id", id);
    // The panels draw their customers' ping too: `latency` is sent only when named.
    // Without customers, no samples: a customer filter left empty would mean all of them.
    const types = this.customers.size ? ["traffic", "events", "latency"] : [];
    if (this.router) {
      types.push("top", "sessions");
      params.set("router", this.router);
    }
    types.push("alerts");
    params.set("types", types.join(","));
    if (this.cursor) params.set("last_id", this.cursor);
    return `${scheme}//${location.host}/ws?${params}`;
  }

  connect() {
    this.drop();
    if (this.stopped) return;
    const customers = [...this.customers];
    const resumed = this.cursor !== null;
    const socket = new WebSocket(this.url());
    this.lastPingAt = null; // a gap across two connections says nothing of the interval
    this.socket = socket;
    this.connects += 1;
    this.setState(this.attempt ? "reconnecting" : "connecting", resumed ? `resuming after ${this.cursor}` : "");
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.failedHandshakes = 0;
      this.lastMessageAt = Date.now();
      this.lastProbeAt = Date.now();
      this.setState("live", "");
      this.handlers.onOpen(customers, resumed);
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      this.lastMessageAt = Date.now();
      /** @type {any} the server's JSON: an entry, or a ping, pong or gap frame */
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (exc) {
        return;
      }
      this.attempt = 0;
      if (frame.type === "ping") {
        if (this.lastPingAt !== null) {
          // The longest of the last few gaps: pings that arrive bunched after a stall
          // must not make the watchdog impatient.
          this.pingGaps.push(this.lastMessageAt - this.lastPingAt);
          if (this.pingGaps.length > 5) this.pingGaps.shift();
          this.pingInterval = Math.max(...this.pingGaps);
        }
        this.lastPingAt = this.lastMessageAt;
        return;
      }
      if (frame.type === "pong") return;
      if (frame.type === "gap") {
        this.handlers.onGap(frame);
        return;
      }
      if (!frame.id) return;
      this.cursor = frame.id;
      observeServerTime(Number(frame.id.split("-", 1)[0]));
      this.handlers.onEntry(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (!opened) this.failedHandshakes += 1;
      if (this.failedHandshakes >= 2) this.handlers.onRefused();
      // 1013: the server closed us for falling behind; come back at once, from the cursor.
      const delay = event.code === 1013 ? 100 : this.backoff();
      const why = event.code === 1013 ? "the server asked us to resume" : `connection closed (${event.code})`;
      this.setState(navigator.onLine ? "reconnecting" : "offline", why);
      this.connectSoon(delay);
    };
  }

  backoff() {
    const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** How long a healthy feed can be silent: a few of the server's ping intervals. */
  deadAfter() {
    const interval = this.pingInterval ?? 20000;
    return Math.max(3000, Math.min(2.5 * interval + 1000, 12000));
  }

  watch() {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const silent = Date.now() - this.lastMessageAt;
    const probeAfter = Math.min(this.pingInterval ?? PROBE_AFTER_MAX, PROBE_AFTER_MAX);
    if (silent > probeAfter && Date.now() - this.lastProbeAt > probeAfter) {
      this.lastProbeAt = Date.now();
      try {
        socket.send('{"type":"ping"}');
      } catch (exc) {
        /* the close event follows */
      }
    }
    if (silent > this.deadAfter()) {
      this.deadFeeds += 1;
      this.drop();
      this.setState("reconnecting", `no message for ${Math.round(silent / 1000)} s: the feed is dead`);
      this.connectSoon(this.backoff());
    }
  }

  snapshot() {
    return {
      state: this.state,
      detail: this.detail,
      cursor: this.cursor,
      customers: [...this.customers],
      router: this.router,
      connects: this.connects,
      deadFeeds: this.deadFeeds,
      pingInterval: this.pingInterval,
      url: this.socket ? this.socket.url : null,
    };
  }
}

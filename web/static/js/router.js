// The router view: one router's top talkers, live from its watch's top frames (one a
// cycle, on the page's one feed), its online sessions (searchable, paged) and the
// sessions no customer has. A click on a customer starts (or shows) its live panel.
//
// Cost on a 2,000-session router: each frame redraws the top table (ROUTER_TOP_N rows,
// 50 by default) by key, touching only the cells whose text changed; the sessions list
// is one page of the API's, read again when a session comes or goes and at each poll.

import { api } from "./api.js";
import { el, find } from "./dom.js";
import {
  compareIds,
  formatBps,
  formatCount,
  formatPercent,
  formatTime,
  formatUptime,
  idMillis,
} from "./format.js";
import { isPending, schedule } from "./frame.js";
import { describeRefusal } from "./refusal.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Entry} Entry */
/** @typedef {import("./api.js").Router} Router */
/** @typedef {import("./api.js").RouterSession} RouterSession */
/** @typedef {import("./api.js").TopRow} TopRow */
/** @typedef {"download" | "upload" | "utilization"} Order */
/**
 * What the header shows: a top frame's totals or the REST answer's.
 * @typedef {object} Totals
 * @property {string | null} id the frame's stream id (null: from REST before any frame)
 * @property {number | null} online
 * @property {number | null} unknown
 * @property {number | null} download_bps
 * @property {number | null} upload_bps
 * @property {number | null} interval_ms
 * @property {number | null} atMs when the watch wrote it
 */
/**
 * @typedef {object} RouterActions
 * @property {(customer: { id: string; name: string }) => Promise<void>} open start or show the panel
 * @property {(customerId: string) => boolean} hasPanel
 */
/**
 * A top row's elements, kept from frame to frame.
 * @typedef {object} TopCells
 * @property {HTMLTableRowElement} tr
 * @property {HTMLButtonElement} name
 * @property {HTMLElement} login
 * @property {HTMLElement} badge
 * @property {HTMLElement} down
 * @property {HTMLElement} fill the bar's share of the plan
 * @property {HTMLElement} up
 * @property {HTMLElement} util
 */
/**
 * A session row's elements.
 * @typedef {object} SessionCells
 * @property {HTMLTableRowElement} tr
 * @property {HTMLElement} address
 * @property {HTMLElement} uptime
 * @property {HTMLElement} down
 * @property {HTMLElement} up
 */

const TOP_LIMIT = 50;
const SESSION_PAGE = window.matchMedia("(max-width: 760px)").matches ? 10 : 20;
const DEBOUNCE_MS = 250;
const SESSIONS_AFTER_EVENT_MS = 1000; // session events that come together: one read
const STALE_MS = 10000; // no frame for this long: ask the API why

/**
 * @param {Node} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** @param {TopRow} row the larger direction's share of the package (percent), or null */
function utilization(row) {
  /** @type {number[]} */
  const shares = [];
  for (const share of [row.download_utilization, row.upload_utilization]) {
    if (share !== null && share !== undefined) shares.push(share);
  }
  return shares.length ? Math.max(...shares) : null;
}

export class RouterView {
  /**
   * @param {HTMLElement} root
   * @param {RouterActions} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.pick = find(root, "#router-pick", HTMLSelectElement);
    this.stateLine = find(root, "#router-state", HTMLElement);
    this.onlineOut = find(root, "#router-online", HTMLElement);
    this.downOut = find(root, "#router-down", HTMLElement);
    this.upOut = find(root, "#router-up", HTMLElement);
    this.unknownOut = find(root, "#router-unknown", HTMLElement);
    this.updatedOut = find(root, "#router-updated", HTMLElement);
    this.topBody = find(root, "#top-rows", HTMLElement);
    this.topEmpty = find(root, "#top-empty", HTMLElement);
    this.actionLine = find(root, "#router-action", HTMLElement);
    this.sortButtons = [...root.querySelectorAll("#top-table th button[data-by]")].filter(
      (b) => b instanceof HTMLButtonElement,
    );
    this.sessionForm = find(root, "#session-form", HTMLFormElement);
    this.sessionQuery = find(root, "#session-q", HTMLInputElement);
    this.sessionSummary = find(root, "#session-summary", HTMLElement);
    this.sessionBody = find(root, "#session-rows", HTMLElement);
    this.sessionPrev = find(root, "#session-prev", HTMLButtonElement);
    this.sessionNext = find(root, "#session-next", HTMLButtonElement);
    this.unknownList = find(root, "#unknown-list", HTMLElement);
    this.unknownSummary = find(root, "#unknown-summary", HTMLElement);

    /** @type {string | null} */
    this.router = null;
    /** @type {Order} */
    this.by = "download";
    /** @type {TopRow[]} in the order shown */
    this.rows = [];
    /** @type {TopRow[] | null} the newest frame's list (by download) */
    this.latestFrame = null;
    this.routersKey = "";
    /** @type {Totals | null} */
    this.totals = null;
    /** @type {string | null} why there is nothing to show */
    this.reason = null;
    this.frames = 0; // top frames taken, for the debug hook
    this.lastFrameAt = 0; // Date.now() of the newest frame
    /** @type {Map<string, TopCells>} customer id -> its row's elements */
    this.topCells = new Map();
    this.topSequence = 0;
    this.topLoading = false;
    this.topAgain = false;

    /** @type {RouterSession[]} */
    this.sessions = [];
    this.sessionTotal = 0;
    this.sessionOffset = 0;
    this.sessionsAt = 0; // Date.now() when the page was read (uptimes count on from it)
    this.sessionSequence = 0;
    /** @type {Map<string, SessionCells>} */
    this.sessionCells = new Map();
    /** @type {Set<string>} logins gone since the page was read */
    this.gone = new Set();
    this.sessionNote = "";
    this.sessionEvents = 0; // session_up/session_down taken, for the debug hook
    /** @type {RouterSession[]} */
    this.unknown = [];
    /** @type {number | undefined} */
    this.debounce = undefined;
    /** @type {number | undefined} */
    this.sessionsSoon = undefined;

    this.top = { render: () => this.renderTop() };
    this.list = { render: () => this.renderSessions() };

    this.pick.addEventListener("change", () => this.choose(this.pick.value || null));
    for (const button of this.sortButtons) {
      button.addEventListener("click", () => this.sortBy(/** @type {Order} */ (button.dataset.by)));
    }
    this.sessionQuery.addEventListener("input", () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.searchSessions(), DEBOUNCE_MS);
    });
    this.sessionForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.searchSessions();
    });
    this.sessionPrev.addEventListener("click", () => this.pageSessions(-1));
    this.sessionNext.addEventListener("click", () => this.pageSessions(1));
    // One listener for every row, whatever the number of rows (and rows come and go).
    this.topBody.addEventListener("click", (event) => this.clicked(event));
    this.sessionBody.addEventListener("click", (event) => this.clicked(event));
  }

  /** The router the feed must follow (null: none). */
  get following() {
    return this.router;
  }

  /**
   * /api/routers answered: fill the picker; the first router is shown until one is chosen.
   * @param {Router[]} routers
   * @returns {boolean} whether the router shown changed
   */
  setRouters(routers) {
    const key = routers.map((r) => `${r.id}\u0000${r.name}`).join("\u0001");
    if (key !== this.routersKey) {
      this.routersKey = key;
      const options = routers.map((r) => {
        const label = r.name && r.name !== r.id ? `${r.name} (${r.id})` : r.id;
        return new Option(label, r.id);
      });
      this.pick.replaceChildren(...options);
    }
    const keep = this.router !== null && routers.some((r) => r.id === this.router);
    const next = keep ? this.router : routers.length ? routers[0].id : null;
    this.pick.value = next || "";
    this.root.hidden = routers.length === 0;
    if (next === this.router) return false;
    this.choose(next);
    return true;
  }

  /** @param {string | null} id */
  choose(id) {
    if (id === this.router) return;
    this.router = id;
    this.rows = [];
    this.latestFrame = null;
    this.totals = null;
    this.reason = null;
    this.frames = 0;
    this.sessions = [];
    this.unknown = [];
    this.gone.clear();
    this.sessionOffset = 0;
    this.sessionQuery.value = "";
    this.say("");
    this.topBody.replaceChildren();
    this.topCells.clear();
    this.sessionBody.replaceChildren();
    this.sessionCells.clear();
    schedule(this.top);
    schedule(this.list);
    this.onChoose(id);
    if (id) this.refresh(true);
  }

  /**
   * Show this router (an alert's link), and bring the view into sight.
   * @param {string} id
   */
  show(id) {
    if ([...this.pick.options].some((o) => o.value === id)) this.pick.value = id;
    this.choose(id);
    this.root.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  /** Replaced by main.js: the feed follows the router chosen. @param {string | null} id */
  onChoose(id) {
    void id;
  }

  /**
   * Read what the feed cannot carry: the sessions page, the unknown sessions, and the
   * top when frames stopped coming (the answer says why) or on `all`.
   * @param {boolean} [all]
   */
  refresh(all = false) {
    if (!this.router) return;
    if (all || Date.now() - this.lastFrameAt > STALE_MS) this.loadTop();
    this.loadSessions();
    this.loadUnknown();
  }

  // -- the top ------------------------------------------------------------------------

  /** @param {Order} by */
  sortBy(by) {
    if (by === this.by) return;
    this.by = by;
    for (const button of this.sortButtons) {
      const th = button.closest("th");
      if (th) th.setAttribute("aria-sort", button.dataset.by === by ? "descending" : "none");
    }
    if (by === "download" && this.latestFrame) this.rows = this.latestFrame;
    else this.loadTop();
    schedule(this.top);
  }

  /** GET …/top in the order chosen: coalesced, one request at a time, newest frame wins. */
  async loadTop() {
    const router = this.router;
    if (!router) return;
    if (this.topLoading) {
      this.topAgain = true;
      return;
    }
    this.topLoading = true;
    const by = this.by;
    try {
      const answer = await api.routerTop(router, { by, limit: TOP_LIMIT });
      if (router !== this.router || by !== this.by) return;
      this.reason = answer.available ? null : answer.reason;
      const shownId = this.totals ? this.totals.id : null;
      // A frame newer than this answer is already shown: its totals stay.
      if (!(shownId && answer.frame_id && compareIds(answer.frame_id, shownId) < 0)) {
        this.totals = {
          id: answer.frame_id,
          online: answer.online,
          unknown: answer.unknown,
          download_bps: answer.download_bps,
          upload_bps: answer.upload_bps,
          interval_ms: answer.interval_ms,
          atMs: answer.frame_id ? idMillis(answer.frame_id) : null,
        };
        if (by === "download" && answer.frame_id) this.latestFrame = answer.top;
        this.rows = answer.top;
      } else if (by !== "download") {
        this.rows = answer.top;
      }
    } catch (exc) {
      const error = /** @type {ApiError} */ (exc);
      if (router === this.router) this.reason = `the top cannot be read: ${describeRefusal(error)}`;
    } finally {
      this.topLoading = false;
      schedule(this.top);
      if (this.topAgain) {
        this.topAgain = false;
        this.loadTop();
      }
    }
  }

  /**
   * An entry of the router's watch, from the feed: a top frame or a session event.
   * @param {Entry} entry
   */
  receive(entry) {
    if (!this.router || entry.router !== this.router) return;
    if (entry.type === "top") this.takeFrame(entry);
    else if (entry.type === "session_up" || entry.type === "session_down") this.sessionEvent(entry);
  }

  /** @param {Entry} frame */
  takeFrame(frame) {
    if (this.totals && this.totals.id && compareIds(frame.id, this.totals.id) <= 0) return; // replayed
    const unknownBefore = this.totals ? this.totals.unknown : null;
    this.frames += 1;
    this.lastFrameAt = Date.now();
    this.reason = null;
    this.totals = {
      id: frame.id,
      online: frame.online ?? null,
      unknown: frame.unknown ?? null,
      download_bps: frame.download_bps ?? null,
      upload_bps: frame.upload_bps ?? null,
      interval_ms: frame.interval_ms ?? null,
      atMs: idMillis(frame.id),
    };
    if (frame.top) this.latestFrame = frame.top;
    // The frame lists the top by download; another order is the API's, read per frame.
    if (this.by === "download" && frame.top) this.rows = frame.top;
    else if (this.by !== "download") this.loadTop();
    if (unknownBefore !== null && frame.unknown !== unknownBefore) this.loadUnknown();
    schedule(this.top);
  }

  renderTop() {
    const totals = this.totals;
    setText(this.onlineOut, totals && totals.online !== null ? formatCount(totals.online) : "–");
    setText(this.downOut, formatBps(totals ? totals.download_bps : null));
    setText(this.upOut, formatBps(totals ? totals.upload_bps : null));
    setText(this.unknownOut, totals && totals.unknown !== null ? formatCount(totals.unknown) : "–");
    const every = totals && totals.interval_ms ? ` · every ${formatCount(totals.interval_ms / 1000)} s` : "";
    setText(this.updatedOut, totals && totals.atMs ? `updated ${formatTime(totals.atMs)}${every}` : "");
    const words = this.reason ? `No live view: ${this.reason}` : "";
    setText(this.stateLine, words);
    this.stateLine.hidden = !words;
    // Nothing to show (the watch is off, or cannot read the router): the reason only.
    this.root.classList.toggle("is-unavailable", this.reason !== null);

    const wanted = new Set();
    let at = 0;
    for (const row of this.rows) {
      wanted.add(row.customer_id);
      let cells = this.topCells.get(row.customer_id);
      if (!cells) {
        cells = this.topRow(row);
        this.topCells.set(row.customer_id, cells);
      }
      this.fillTop(cells, row);
      // Move a row only when it is not already in its place: a quiet cycle moves nothing.
      const here = this.topBody.children[at];
      if (here !== cells.tr) this.topBody.insertBefore(cells.tr, here || null);
      at += 1;
    }
    for (const [id, cells] of this.topCells) {
      if (wanted.has(id)) continue;
      cells.tr.remove();
      this.topCells.delete(id);
    }
    let empty = "";
    if (!this.rows.length && !this.reason) {
      empty = this.totals ? "No customer has traffic now." : "Waiting for the router's first cycle…";
    }
    setText(this.topEmpty, empty);
    this.topEmpty.hidden = !empty;
  }

  /**
   * @param {TopRow} row
   * @returns {TopCells}
   */
  topRow(row) {
    const tr = el("tr", "top-row");
    tr.dataset.customerId = row.customer_id;
    const who = el("td", "top-who");
    const name = el("button", "top-name");
    name.type = "button";
    name.dataset.customerId = row.customer_id;
    const badge = el("span", "badge state-running", "monitored");
    const login = el("span", "top-login");
    who.append(name, badge, login);
    const downCell = el("td", "num top-down");
    const down = el("span", "top-value");
    const bar = el("div", "bar");
    const fill = el("div", "bar-fill");
    bar.append(fill);
    downCell.append(down, bar);
    const up = el("td", "num top-up");
    const util = el("td", "num top-util");
    tr.append(who, downCell, up, util);
    return { tr, name, login, badge, down, fill, up, util };
  }

  /**
   * @param {TopCells} cells
   * @param {TopRow} row
   */
  fillTop(cells, row) {
    setText(cells.name, row.customer_name || row.username);
    const monitored = row.monitored || this.actions.hasPanel(row.customer_id);
    const label = `${monitored ? "Show" : "Start"} the live panel of ${row.customer_name || row.username}`;
    if (cells.name.getAttribute("aria-label") !== label) cells.name.setAttribute("aria-label", label);
    cells.badge.hidden = !monitored;
    cells.tr.classList.toggle("is-monitored", monitored);
    setText(cells.login, row.username);
    setText(cells.down, formatBps(row.download_bps));
    setText(cells.up, formatBps(row.upload_bps));
    const share = row.download_utilization;
    // The bar is the download's share of the plan (full past 100 %; none without a plan).
    const width = share === null ? "0%" : `${Math.min(100, Math.max(0, share)).toFixed(1)}%`;
    if (cells.fill.style.width !== width) cells.fill.style.width = width;
    cells.fill.classList.toggle("over", share !== null && share >= 90);
    const most = utilization(row);
    setText(cells.util, formatPercent(most));
    const plan =
      row.package_download_bps !== null
        ? `plan ${formatBps(row.package_download_bps)} / ${formatBps(row.package_upload_bps)}`
        : "no plan";
    if (cells.tr.title !== plan) cells.tr.title = plan;
  }

  // -- drill-down ---------------------------------------------------------------------

  /** @param {Event} event */
  async clicked(event) {
    const target = event.target instanceof Element ? event.target.closest("[data-customer-id]") : null;
    if (!(target instanceof HTMLElement)) return;
    const id = target.dataset.customerId;
    if (!id) return;
    const name = target.dataset.customerName || (target.querySelector(".top-name") || target).textContent || "";
    this.say("");
    try {
      await this.actions.open({ id, name });
    } catch (exc) {
      this.say(describeRefusal(/** @type {ApiError} */ (exc), { name }));
    }
  }

  /** @param {string} text */
  say(text) {
    this.actionLine.textContent = text;
    this.actionLine.hidden = !text;
  }

  // -- sessions -----------------------------------------------------------------------

  searchSessions() {
    clearTimeout(this.debounce);
    this.sessionOffset = 0;
    this.loadSessions();
  }

  /** @param {number} step */
  pageSessions(step) {
    const offset = this.sessionOffset + step * SESSION_PAGE;
    if (offset < 0 || offset >= this.sessionTotal) return;
    this.sessionOffset = offset;
    this.loadSessions();
  }

  /** @param {Entry} entry */
  sessionEvent(entry) {
    // Shown at once on the page as it is; the page is read again soon (a session that
    // came up may belong on it, and the order is the API's).
    const key = `${entry.session}\u0000${entry.name}`;
    if (entry.type === "session_down") this.gone.add(key);
    else this.gone.delete(key);
    schedule(this.list);
    clearTimeout(this.sessionsSoon);
    this.sessionEvents += 1;
    this.sessionsSoon = setTimeout(() => this.loadSessions(), SESSIONS_AFTER_EVENT_MS);
  }

  async loadSessions() {
    const router = this.router;
    if (!router) return;
    const sequence = ++this.sessionSequence;
    try {
      const answer = await api.routerSessions(router, {
        q: this.sessionQuery.value.trim(),
        limit: SESSION_PAGE,
        offset: this.sessionOffset,
      });
      if (sequence !== this.sessionSequence || router !== this.router) return;
      this.sessions = answer.sessions;
      this.sessionTotal = answer.total;
      this.sessionsAt = Date.now();
      this.gone.clear();
      this.sessionNote = answer.available ? "" : `Sessions unavailable: ${answer.reason}`;
    } catch (exc) {
      if (sequence !== this.sessionSequence) return;
      this.sessionNote = `Sessions could not be loaded: ${describeRefusal(/** @type {ApiError} */ (exc))}`;
    }
    schedule(this.list);
  }

  async loadUnknown() {
    const router = this.router;
    if (!router) return;
    try {
      const answer = await api.routerUnknown(router);
      if (router !== this.router) return;
      this.unknown = answer.sessions;
    } catch (exc) {
      return; // the next poll tries again
    }
    this.renderUnknown();
  }

  renderSessions() {
    const first = this.sessionTotal ? this.sessionOffset + 1 : 0;
    const last = this.sessionOffset + this.sessions.length;
    let summary = this.sessionNote || "";
    if (!summary) {
      if (!this.sessionTotal) {
        summary = this.sessionQuery.value.trim() ? "No session matches." : "No session online.";
      }
      else summary = `${formatCount(first)}–${formatCount(last)} of ${formatCount(this.sessionTotal)} sessions`;
    }
    setText(this.sessionSummary, summary);
    this.sessionPrev.disabled = this.sessionOffset === 0;
    this.sessionNext.disabled = last >= this.sessionTotal;
    const elapsed = (Date.now() - this.sessionsAt) / 1000;
    const wanted = new Set();
    let at = 0;
    for (const s of this.sessions) {
      const key = `${s.session}\u0000${s.name}`;
      wanted.add(key);
      let cells = this.sessionCells.get(key);
      if (!cells) {
        cells = this.sessionRow(s);
        this.sessionCells.set(key, cells);
      }
      const gone = this.gone.has(key);
      cells.tr.classList.toggle("is-gone", gone);
      setText(cells.uptime, gone ? "gone" : formatUptime(s.uptime_s === null ? null : s.uptime_s + elapsed));
      setText(cells.down, formatBps(s.download_bps));
      setText(cells.up, formatBps(s.upload_bps));
      setText(cells.address, s.address || "–");
      const here = this.sessionBody.children[at];
      if (here !== cells.tr) this.sessionBody.insertBefore(cells.tr, here || null);
      at += 1;
    }
    for (const [key, cells] of this.sessionCells) {
      if (wanted.has(key)) continue;
      cells.tr.remove();
      this.sessionCells.delete(key);
    }
  }

  /**
   * @param {RouterSession} s
   * @returns {SessionCells}
   */
  sessionRow(s) {
    const tr = el("tr", s.customer ? "session-row" : "session-row is-unknown");
    const loginCell = el("td", "session-login");
    const login = el("span", "session-name", s.name);
    const who = el("span", "session-who");
    if (s.customer) {
      const button = el("button", "top-name", s.customer.name);
      button.type = "button";
      button.dataset.customerId = s.customer.id;
      button.dataset.customerName = s.customer.name;
      button.setAttribute("aria-label", `Start or show the live panel of ${s.customer.name}`);
      who.append(button);
    } else {
      who.append(el("span", "badge status-pending", "unknown"));
    }
    loginCell.append(login, who);
    const kind = s.session === "hotspot" ? "Hotspot" : "PPPoE";
    const address = el("td", "session-address");
    address.title = [kind, s.caller_id].filter(Boolean).join(" · ");
    const uptime = el("td", "num session-uptime");
    const down = el("td", "num");
    const up = el("td", "num");
    tr.append(loginCell, address, uptime, down, up);
    return { tr, address, uptime, down, up };
  }

  renderUnknown() {
    const count = this.unknown.length;
    setText(this.unknownSummary, count ? `${formatCount(count)} online` : "None: every login is a customer's.");
    const items = this.unknown.map((s) => {
      const li = el("li", "unknown");
      const kind = s.session === "hotspot" ? "Hotspot" : "PPPoE";
      li.append(
        el("span", "unknown-name", s.name),
        el(
          "span",
          "unknown-meta",
          [kind, s.address, s.caller_id, `up ${formatUptime(s.uptime_s)}`, formatBps(s.download_bps)]
            .filter(Boolean)
            .join(" · "),
        ),
      );
      return li;
    });
    this.unknownList.replaceChildren(...items);
  }

  /** Once a second: the uptimes count on between reads. */
  tick() {
    if (this.sessions.length) schedule(this.list);
  }

  /** What the debug hook shows. */
  snapshot() {
    return {
      router: this.router,
      by: this.by,
      frames: this.frames,
      frameId: this.totals ? this.totals.id : null,
      // false while the newest frame waits for its animation frame: the table still shows the one before
      topRendered: !isPending(this.top),
      reason: this.reason,
      top: [...this.topBody.querySelectorAll("tr")].map((tr) => (tr instanceof HTMLElement ? tr.dataset.customerId : "")),
      rows: this.rows.map((r) => ({ id: r.customer_id, download_bps: r.download_bps, upload_bps: r.upload_bps })),
      sessions: this.sessions.map((s) => s.name),
      sessionTotal: this.sessionTotal,
      sessionEvents: this.sessionEvents,
      unknown: this.unknown.map((s) => s.name),
      text: {
        online: this.onlineOut.textContent,
        download: this.downOut.textContent,
        upload: this.upOut.textContent,
        unknown: this.unknownOut.textContent,
      },
    };
  }
}

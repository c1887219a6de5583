// One live panel per monitored customer: the rates now, a five-minute chart, the
// session's peak, average and bytes, and its status events; the RTT of the customer's
// ping under the chart with the verdict it supports (verdict.js), and the session's
// report once it ends, beside the customer's past sessions (history.js).
//
// Entries come from two places: the backfill (GET /api/customers/{id}/traffic, once
// the feed carrying this customer is open) and the live feed. Until the backfill is
// in, live entries wait in `pending`; then both are taken in id order, and any id at
// or below the last one taken is a duplicate and dropped. So a resume that replays a
// little, or a backfill that overlaps the feed, never draws a point twice.

import { api, csvUrl } from "./api.js";
import { CHART_HEIGHT, createChart, createRttChart, keepCursor, RTT_HEIGHT, WINDOW_SECONDS } from "./chart.js";
import { el } from "./dom.js";
import {
  compareIds,
  formatBps,
  formatBytes,
  formatPercent,
  formatTime,
  idMillis,
  serviceName,
} from "./format.js";
import { isPending, schedule, serverNow } from "./frame.js";
import { SessionHistory } from "./history.js";
import { describeRefusal } from "./refusal.js";
import { Diagnosis, formatMs, verdictClass } from "./verdict.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Entry} Entry */
/** @typedef {import("./api.js").Monitor} Monitor */
/**
 * What a panel knows of its customer: from the status, the list, and its entries.
 * @typedef {object} PanelCustomer
 * @property {string} id
 * @property {string} [name]
 * @property {string} [username]
 * @property {string} [service_type]
 * @property {string} [router]
 */
/** @typedef {{ stop(panel: Panel): void; close(panel: Panel): void }} PanelActions */
/** @typedef {{ t: number; type: string; reason: string; id: string | null }} PanelEvent t in seconds */
/** @typedef {{ ms: number; type: string; reason: string }} LogLine */
/** @typedef {{ id: string | null; download: string | null; upload: string | null; state: string }} Drawn */
/**
 * The session's numbers, from its samples.
 * @typedef {object} Stats
 * @property {string | null | undefined} session
 * @property {number} count
 * @property {number} sumDown
 * @property {number} sumUp
 * @property {number} peakDown
 * @property {number} peakUp
 * @property {number} bytesDown
 * @property {number} bytesUp
 * @property {number | null} firstMs
 * @property {number | null} lastMs
 * @property {number | null} interval the shortest gap between two samples (s)
 */

/** @type {Record<string, string>} */
const EVENT_WORDS = {
  started: "Monitoring started",
  resumed: "Samples resumed",
  reconnecting: "Reconnecting",
  offline: "Offline",
  stopped: "Stopped",
  gap: "Gap: entries expired before they could be read",
};
// Reasons that say the router (not the customer) is the trouble.
const ROUTER_TROUBLE = /router|cannot reach|connection refused|timed out|too many sessions|cannot resolve/i;
const KEEP_IDS = 4000; // ids remembered for the debug hook
const RECENT_EVENTS = 4;
const GONE_GRACE_MS = 8000;
const MAX_PENDING = 2000;
// A started event's `ping` when the monitor runs without one, in words.
/** @type {Record<string, string>} */
const PING_WORDS = {
  off: "ping off",
  capped: "ping capped: PING_MAX_PER_ROUTER reached",
  "no address": "no address to ping",
};

/**
 * @param {Node} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** @param {string | null | undefined} reason */
export function routerTrouble(reason) {
  return ROUTER_TROUBLE.test(reason || "");
}

export class Panel {
  // The panel's elements and observers, made by build().
  /** @type {HTMLElement} */ element;
  /** @type {HTMLElement} */ subOut;
  /** @type {HTMLElement} */ badge;
  /** @type {{ value: HTMLElement; util: HTMLElement }} */ downOut;
  /** @type {{ value: HTMLElement; util: HTMLElement }} */ upOut;
  /** @type {HTMLElement} */ chartBox;
  /** @type {{ value: HTMLElement; util: HTMLElement }} */ rttOut;
  /** @type {HTMLElement} */ rttBox;
  /** @type {HTMLElement} */ verdictOut;
  /** @type {SessionHistory} */ history;
  /** @type {uPlot | null} */ rttChart;
  /** @type {HTMLElement} */ peakOut;
  /** @type {HTMLElement} */ avgOut;
  /** @type {HTMLElement} */ bytesOut;
  /** @type {HTMLElement} */ sessionOut;
  /** @type {HTMLElement} */ statusOut;
  /** @type {HTMLElement} */ eventList;
  /** @type {HTMLButtonElement} */ stopButton;
  /** @type {HTMLButtonElement} */ closeButton;
  /** @type {ResizeObserver} */ resizer;
  /** @type {IntersectionObserver} */ viewer;
  /** @type {uPlot | null} */ chart;
  /** @type {number | null} the chart box's width (px) */ size;
  /** @type {boolean} */ visible;
  /** @type {number | null | undefined} when the status first lacked the session (ms) */ goneAt;
  /** @type {string | undefined} why the history could not be read */ statusNote;
  /** @type {string | undefined} the log as last drawn */ logKey;

  /**
   * `customer`: {id, name, username, service_type, router, package}; `monitor`: the
   * status item ({state, created_at, started_at}) or null; `actions`: {stop, close}.
   * @param {PanelCustomer} customer
   * @param {Monitor | null} monitor
   * @param {PanelActions} actions
   */
  constructor(customer, monitor, actions) {
    this.id = customer.id;
    this.customer = customer;
    this.actions = actions;
    this.since = (monitor && (monitor.created_at || monitor.started_at)) || null;
    this.state = (monitor && monitor.state) || "starting";
    this.reason = "";
    this.backfillState = "waiting"; // waiting -> loading -> done
    /** @type {Entry[]} */
    this.pending = [];
    /** @type {string | null} */
    this.lastId = null;
    /** @type {string[]} */
    this.takenIds = [];
    /** @type {Entry | null} newest traffic entry */
    this.latest = null;
    /** @type {Drawn | null} what the DOM shows, for the debug hook */
    this.drawn = null;
    // Chart data; `pointIds` parallels x (null for a gap point).
    /** @type {number[]} */
    this.x = [];
    /** @type {(number | null)[]} */
    this.down = [];
    /** @type {(number | null)[]} */
    this.up = [];
    /** @type {(number | null)[]} */
    this.pkgDown = [];
    /** @type {(number | null)[]} */
    this.pkgUp = [];
    /** @type {(string | null)[]} */
    this.pointIds = [];
    /** @type {PanelEvent[]} */
    this.events = [];
    // The ping's chart data (null = lost or a gap), and the lost probes' times (s).
    /** @type {number[]} */
    this.rttX = [];
    /** @type {(number | null)[]} */
    this.rtt = [];
    /** @type {number[]} */
    this.lossT = [];
    /** @type {Entry | null} newest latency entry */
    this.latestProbe = null;
    /** @type {string | null} the started event's `ping`: on, off, no address, capped */
    this.ping = null;
    this.diagnosis = new Diagnosis();
    /** @type {string | null | undefined} the session the diagnosis is of */
    this.diagnosisSession = null;
    /** @type {LogLine[]} newest first, for the panel's list */
    this.log = [];
    this.stats = this.freshStats(null);
    this.build();
  }

  /**
   * @param {string | null | undefined} session
   * @returns {Stats}
   */
  freshStats(session) {
    return {
      session,
      count: 0,
      sumDown: 0,
      sumUp: 0,
      peakDown: 0,
      peakUp: 0,
      bytesDown: 0,
      bytesUp: 0,
      firstMs: null,
      lastMs: null,
      interval: null,
    };
  }

  // -- DOM ----------------------------------------------------------------------------

  build() {
    const c = this.customer;
    const root = el("article", "panel");
    this.history = new SessionHistory(c);
    root.dataset.customerId = this.id;
    const titleId = `panel-title-${this.id}`;
    root.setAttribute("aria-labelledby", titleId);

    const head = el("header", "panel-head");
    const title = el("h3", "panel-title", c.name || c.username);
    title.id = titleId;
    this.subOut = el("p", "panel-sub");
    const sub = this.subOut;
    this.describe();
    this.badge = el("span", "badge");
    head.append(title, this.badge, sub);

    const now = el("div", "now");
    /**
     * @param {string} label
     * @param {string} cls
     */
    const rate = (label, cls) => {
      const box = el("div", `rate ${cls}`);
      box.dataset.readout = cls;
      const name = el("span", "rate-label", label);
      const value = el("span", "rate-value", "–");
      const util = el("span", "rate-util", "");
      box.append(name, value, util);
      now.append(box);
      return { value, util };
    };
    this.downOut = rate("Download", "down");
    this.upOut = rate("Upload", "up");
    this.rttOut = rate("RTT", "rtt");

    this.chartBox = el("div", "chart");
    // Focusable: the arrow keys (Home, End; Escape leaves) move the chart's cursor from
    // sample to sample and its legend reads the values, as hovering does.
    this.chartBox.tabIndex = 0;
    this.chartBox.setAttribute("role", "group");
    this.chartBox.setAttribute(
      "aria-label",
      `Download and upload of ${c.name || c.username}, last 5 minutes; arrow keys read the samples`,
    );

    // Under the bandwidth, on the same time axis: the ping's RTT, lost probes marked red.
    this.rttBox = el("div", "rtt-chart");
    this.rttBox.tabIndex = 0;
    this.rttBox.setAttribute("role", "group");
    this.rttBox.setAttribute(
      "aria-label",
      `Round-trip time of pings to ${c.name || c.username}, last 5 minutes; lost probes marked red`,
    );
    this.verdictOut = el("p", "verdict verdict-unknown");
    this.verdictOut.setAttribute("aria-live", "polite");

    const stats = el("dl", "stats");
    /** @param {string} label */
    const stat = (label) => {
      const wrap = el("div", "stat");
      const dt = el("dt", "", label);
      const dd = el("dd", "", "–");
      wrap.append(dt, dd);
      stats.append(wrap);
      return dd;
    };
    this.peakOut = stat("Peak ↓ / ↑");
    this.avgOut = stat("Average ↓ / ↑");
    this.bytesOut = stat("Transferred ↓ / ↑");
    this.sessionOut = stat("Session");

    this.statusOut = el("p", "panel-status");
    this.statusOut.setAttribute("role", "status");
    this.eventList = el("ol", "events");
    this.eventList.setAttribute("aria-label", "Recent status events");

    const foot = el("footer", "panel-foot");
    const csv = el("a", "button link", "Export CSV");
    csv.href = csvUrl(this.id);
    csv.setAttribute("download", `traffic-${c.username || this.id}.csv`);
    this.stopButton = el("button", "button danger", "Stop");
    this.stopButton.type = "button";
    this.stopButton.setAttribute("aria-label", `Stop monitoring ${c.name || c.username}`);
    this.stopButton.addEventListener("click", () => this.actions.stop(this));
    this.closeButton = el("button", "button", "Close");
    this.closeButton.type = "button";
    this.closeButton.setAttribute("aria-label", `Close the panel of ${c.name || c.username}`);
    this.closeButton.addEventListener("click", () => this.actions.close(this));
    foot.append(csv, this.stopButton, this.closeButton);

    const key = el("p", "key");
    key.setAttribute("aria-hidden", "true");
    key.append(
      el("span", "key-down", "download"),
      el("span", "key-up", "upload"),
      el("span", "key-package", "package"),
      el("span", "key-rtt", "RTT (ms)"),
      el("span", "key-loss", "lost probe"),
    );

    root.append(
      head,
      now,
      this.chartBox,
      this.rttBox,
      key,
      this.verdictOut,
      stats,
      this.statusOut,
      this.eventList,
      ...this.history.elements,
      foot,
    );
    this.element = root;
    this.chart = null;
    this.rttChart = null;
    this.size = null;
    this.resizer = new ResizeObserver((entries) => {
      const width = Math.floor(entries[0].contentRect.width);
      if (width > 0 && width !== this.size) {
        this.size = width;
        schedule(this);
      }
    });
    this.resizer.observe(this.chartBox);
    // A panel scrolled out of view is not drawn (its data keeps up); it is drawn again
    // as it comes into view. On a phone that is all but one or two panels.
    this.visible = true;
    this.viewer = new IntersectionObserver((entries) => {
      this.visible = entries[entries.length - 1].isIntersecting;
      if (this.visible) schedule(this);
    });
    this.viewer.observe(this.element);
    schedule(this);
  }

  describe() {
    const c = this.customer;
    const service = c.service_type ? serviceName(c.service_type) : null;
    setText(this.subOut, [c.username, service, c.router].filter(Boolean).join(" · "));
  }

  destroy() {
    this.resizer.disconnect();
    this.viewer.disconnect();
    if (this.chart) this.chart.destroy();
    if (this.rttChart) this.rttChart.destroy();
    this.element.remove();
  }

  // -- entries ------------------------------------------------------------------------

  /**
   * A live entry from the feed.
   * @param {Entry} entry
   */
  receive(entry) {
    if (this.backfillState !== "done") {
      this.pending.push(entry);
      // The backfill reads them from the stream anyway: hold a bounded number only.
      if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
      return;
    }
    this.take(entry);
    schedule(this);
  }

  /** The feed carrying this customer is open: read what the stream retained. */
  async backfill() {
    if (this.backfillState === "loading") return;
    this.backfillState = "loading";
    /** @type {Entry[]} */
    const entries = [];
    try {
      /** @type {string | undefined} */
      let since = this.since || undefined;
      for (let page = 0; page < 10; page += 1) {
        const answer = await api.traffic(this.id, { since, limit: 5000 });
        entries.push(...answer.entries);
        if (!answer.more || !answer.next) break;
        since = answer.next;
      }
    } catch (exc) {
      this.backfillState = "waiting";
      const error = /** @type {ApiError} */ (exc);
      this.statusNote = `Could not read the history: ${describeRefusal(error, this.customer)}`;
      schedule(this);
      return false;
    }
    const all = [...entries, ...this.pending];
    this.pending = [];
    all.sort((a, b) => compareIds(a.id, b.id));
    for (const entry of all) this.take(entry);
    this.backfillState = "done";
    this.statusNote = "";
    schedule(this);
    return true;
  }

  /** Make the next backfill read everything again (the feed lost its place). */
  rebackfill() {
    if (this.backfillState === "done") this.backfillState = "waiting";
  }

  /** @param {Entry} entry */
  take(entry) {
    if (!entry || !entry.id) return;
    if (this.lastId !== null && compareIds(entry.id, this.lastId) <= 0) return; // seen
    this.lastId = entry.id;
    this.takenIds.push(entry.id);
    if (this.takenIds.length > KEEP_IDS) this.takenIds.splice(0, this.takenIds.length - KEEP_IDS);
    const ms = idMillis(entry.id);
    if (!this.customer.service_type && entry.service_type) {
      this.customer.service_type = entry.service_type; // the status does not say; entries do
      this.describe();
    }
    if (entry.type === "traffic") this.takeSample(entry, ms);
    else if (entry.type === "latency") this.takeProbe(entry, ms);
    else this.takeEvent(entry.type, entry.reason || "", ms, entry.id, entry.session_id, entry.ping);
  }

  /**
   * The diagnosis of `session` (a new one for a new session: the verdict is of the
   * session's own samples).
   * @param {string | null | undefined} session
   */
  diagnosisOf(session) {
    if (session && session !== this.diagnosisSession) {
      this.diagnosis = new Diagnosis();
      this.diagnosisSession = session;
    }
    return this.diagnosis;
  }

  /**
   * A latency entry: one ping reply (rtt_ms null and a status when lost).
   * @param {Entry} entry
   * @param {number} ms
   */
  takeProbe(entry, ms) {
    const t = ms / 1000;
    const rtt = entry.rtt_ms === null || entry.rtt_ms === undefined ? null : Number(entry.rtt_ms);
    const lost = rtt === null || (entry.status !== null && entry.status !== undefined);
    this.diagnosisOf(entry.session_id).probe(lost ? null : rtt, entry.status);
    const lastX = this.rttX.length ? this.rttX[this.rttX.length - 1] : null;
    // A silence (the monitor was offline, the ping restarted): break the line.
    if (lastX !== null && this.rtt[this.rtt.length - 1] !== null && t - lastX > 3) {
      this.rttX.push((lastX + t) / 2);
      this.rtt.push(null);
    }
    this.rttX.push(t);
    this.rtt.push(lost ? null : rtt);
    if (lost) this.lossT.push(t);
    if (this.rttX.length > 2 * WINDOW_SECONDS) this.trim(t);
    this.latestProbe = entry;
  }

  /**
   * @param {Entry} entry
   * @param {number} ms
   */
  takeSample(entry, ms) {
    const s = this.stats.session === entry.session_id ? this.stats : (this.stats = this.freshStats(entry.session_id));
    const gap = s.lastMs === null ? null : (ms - s.lastMs) / 1000;
    if (gap !== null && gap > 0) s.interval = s.interval === null ? gap : Math.min(s.interval, gap);
    const nominal = s.interval === null ? 1 : s.interval;
    // Each sample stands for the time since the previous one; the first, and one after
    // a silence (the monitor was offline), for the monitor's usual interval.
    const seconds = gap === null || gap > 3 * nominal ? nominal : gap;
    const down = Number(entry.download_bps) || 0;
    const up = Number(entry.upload_bps) || 0;
    this.diagnosisOf(entry.session_id).sample(down, up, entry.package_download_bps, entry.package_upload_bps);
    s.count += 1;
    s.sumDown += down;
    s.sumUp += up;
    s.peakDown = Math.max(s.peakDown, down);
    s.peakUp = Math.max(s.peakUp, up);
    s.bytesDown += (down * seconds) / 8;
    s.bytesUp += (up * seconds) / 8;
    if (s.firstMs === null) s.firstMs = ms;
    s.lastMs = ms;

    const t = ms / 1000;
    const lastX = this.x.length ? this.x[this.x.length - 1] : null;
    if (lastX !== null && this.down[this.down.length - 1] !== null && t - lastX > 3 * nominal) {
      this.pushPoint((lastX + t) / 2, null, null, null, null, null); // a silence: break the line
    }
    this.pushPoint(t, down, up, entry.package_download_bps ?? null, entry.package_upload_bps ?? null, entry.id);
    if (this.x.length > 2 * WINDOW_SECONDS) this.trim(t); // not drawn for long (a hidden tab)
    this.latest = entry;
    if (this.state !== "running" || this.reason) {
      this.state = "running";
      this.reason = "";
    }
  }

  /**
   * @param {string} type
   * @param {string} reason
   * @param {number} ms
   * @param {string | null} id
   * @param {string | null | undefined} session
   * @param {string | undefined} [ping] a started event's: on, off, no address, capped
   */
  takeEvent(type, reason, ms, id, session, ping) {
    const t = ms / 1000;
    this.events.push({ t, type, reason, id });
    this.log.unshift({ ms, type, reason });
    if (this.log.length > RECENT_EVENTS) this.log.length = RECENT_EVENTS;
    if (type === "started" && session && this.stats.session !== session) this.stats = this.freshStats(session);
    if (type === "started") {
      this.diagnosisOf(session);
      this.ping = ping ?? null;
      this.latestProbe = null;
    }
    if (type === "offline" || type === "reconnecting" || type === "stopped" || type === "gap") {
      const lastX = this.x.length ? this.x[this.x.length - 1] : null;
      if (lastX === null || t > lastX) this.pushPoint(t, null, null, null, null, null);
      const lastRtt = this.rttX.length ? this.rttX[this.rttX.length - 1] : null;
      if (lastRtt === null || t > lastRtt) {
        this.rttX.push(t);
        this.rtt.push(null);
      }
    }
    if (type === "stopped" && session) this.history.reportEnded(session);
    this.state = type === "started" || type === "resumed" ? "running" : type === "gap" ? this.state : type;
    this.reason = type === "gap" ? this.reason : reason;
  }

  /**
   * The feed says entries between two ids are gone (trimmed): draw a gap.
   * @param {string} fromId
   * @param {string} toId
   */
  gap(fromId, toId) {
    this.takeEvent("gap", "", idMillis(toId) - 1, null, null);
    schedule(this);
  }

  /**
   * @param {number} t
   * @param {number | null} down
   * @param {number | null} up
   * @param {number | null} pkgDown
   * @param {number | null} pkgUp
   * @param {string | null} id
   */
  pushPoint(t, down, up, pkgDown, pkgUp, id) {
    this.x.push(t);
    this.down.push(down);
    this.up.push(up);
    this.pkgDown.push(pkgDown);
    this.pkgUp.push(pkgUp);
    this.pointIds.push(id);
  }

  /** @param {number} nowSeconds */
  trim(nowSeconds) {
    const oldest = nowSeconds - WINDOW_SECONDS - 5;
    let cut = 0;
    while (cut < this.x.length && this.x[cut] < oldest) cut += 1;
    if (cut) {
      for (const series of [this.x, this.down, this.up, this.pkgDown, this.pkgUp, this.pointIds]) {
        series.splice(0, cut);
      }
    }
    let rttCut = 0;
    while (rttCut < this.rttX.length && this.rttX[rttCut] < oldest) rttCut += 1;
    if (rttCut) {
      this.rttX.splice(0, rttCut);
      this.rtt.splice(0, rttCut);
    }
    let lossCut = 0;
    while (lossCut < this.lossT.length && this.lossT[lossCut] < oldest) lossCut += 1;
    if (lossCut) this.lossT.splice(0, lossCut);
    let drop = 0;
    while (drop < this.events.length && this.events[drop].t < oldest) drop += 1;
    if (drop) this.events.splice(0, drop);
  }

  /**
   * Status from /api/monitor/status (null: no open session any more).
   * @param {Monitor | null} monitor
   */
  updateMonitor(monitor) {
    if (monitor) {
      this.goneAt = null;
      // The stream says it first; the status catches what the stream cannot (pending),
      // and a monitor started again after it stopped.
      if (monitor.state && monitor.state !== this.state && (this.state === "stopped" || !this.latest)) {
        this.state = monitor.state;
      }
    } else if (this.state !== "stopped") {
      // No open session: its `stopped` event (with the reason) is on its way. Say
      // "stopping" until it comes; without it after a few seconds, say stopped anyway.
      this.goneAt = this.goneAt ?? Date.now();
      this.state = Date.now() - this.goneAt > GONE_GRACE_MS ? "stopped" : "stopping";
    }
    schedule(this);
  }

  /** Stop was asked: say so until the `stopped` event arrives. */
  markStopping() {
    if (this.state !== "stopped") this.state = "stopping";
    schedule(this);
  }

  get monitored() {
    return this.state !== "stopped";
  }

  // -- drawing (in an animation frame) -------------------------------------------------

  render() {
    const now = serverNow() / 1000;
    this.trim(now);
    if (!this.visible) return;
    if (this.size) {
      const sync = `panel-${this.id}`;
      if (!this.chart) {
        this.chart = createChart(this.chartBox, () => this.events, this.size, sync);
      } else if (this.chart.width !== this.size) {
        this.chart.setSize({ width: this.size, height: CHART_HEIGHT });
      }
      const chart = this.chart;
      chart.batch(() => {
        chart.setData([this.x, this.down, this.up, this.pkgDown], false);
        chart.setScale("x", { min: now - WINDOW_SECONDS, max: now });
      });
      keepCursor(chart);
      // A monitor without ping and nothing to show: no empty pane (the readout says why).
      this.rttBox.hidden = this.ping !== null && this.ping !== "on" && !this.rttX.length;
      if (!this.rttBox.hidden) {
        if (!this.rttChart) {
          this.rttChart = createRttChart(this.rttBox, () => this.lossT, this.size, sync);
        } else if (this.rttChart.width !== this.size) {
          this.rttChart.setSize({ width: this.size, height: RTT_HEIGHT });
        }
        const rttChart = this.rttChart;
        rttChart.batch(() => {
          rttChart.setData([this.rttX, this.rtt], false);
          rttChart.setScale("x", { min: now - WINDOW_SECONDS, max: now });
        });
      }
    }
    this.renderNumbers();
  }

  renderNumbers() {
    const e = this.latest;
    const s = this.stats;
    const live = this.state === "running" && e;
    setText(this.downOut.value, live ? formatBps(e.download_bps) : "–");
    setText(this.upOut.value, live ? formatBps(e.upload_bps) : "–");
    setText(
      this.downOut.util,
      live && e.package_download_bps
        ? `${formatPercent(e.download_utilization)} of ${formatBps(e.package_download_bps)}`
        : live
          ? "no package speed"
          : "",
    );
    setText(
      this.upOut.util,
      live && e.package_upload_bps
        ? `${formatPercent(e.upload_utilization)} of ${formatBps(e.package_upload_bps)}`
        : "",
    );
    const has = s.count > 0;
    setText(this.peakOut, has ? `${formatBps(s.peakDown)} / ${formatBps(s.peakUp)}` : "–");
    setText(this.avgOut, has ? `${formatBps(s.sumDown / s.count)} / ${formatBps(s.sumUp / s.count)}` : "–");
    setText(this.bytesOut, has ? `${formatBytes(s.bytesDown)} / ${formatBytes(s.bytesUp)}` : "–");
    setText(this.sessionOut, has ? `since ${formatTime(s.firstMs)} · ${s.count.toLocaleString()} samples` : "–");
    this.renderPing(Boolean(live));

    const state = this.state;
    setText(this.badge, state);
    this.badge.className = `badge state-${state}`;
    this.element.classList.toggle("is-stopped", state === "stopped");
    let status = "";
    if (state === "offline") {
      // "sim-1 unreachable: cannot reach sim-1: ..." -> "Router unreachable: cannot reach sim-1: ..."
      status = routerTrouble(this.reason)
        ? `Router unreachable: ${this.reason.replace(/^(\S+ )?(router )?unreachable:\s*/i, "")}`
        : `Offline: ${this.reason || "no samples"}`;
    } else if (state === "reconnecting") {
      status = `Reconnecting: ${this.reason || "the router connection is being re-established"}`;
    } else if (state === "stopped") {
      status = `Stopped: ${this.reason || "the monitor has no open session"}`;
    } else if (state === "pending" || state === "starting") {
      status = "Starting: waiting for the first sample";
    } else if (this.statusNote) {
      status = this.statusNote;
    }
    setText(this.statusOut, status);
    this.statusOut.hidden = !status;
    this.stopButton.hidden = state === "stopped";
    this.closeButton.hidden = state !== "stopped";
    this.renderLog();
    this.drawn = {
      id: e ? e.id : null,
      download: this.downOut.value.textContent,
      upload: this.upOut.value.textContent,
      state,
    };
  }

  /**
   * The RTT readout and the verdict.
   * @param {boolean} live
   */
  renderPing(live) {
    const p = this.latestProbe;
    const off = this.ping !== null && this.ping !== "on" ? PING_WORDS[this.ping] || `ping ${this.ping}` : null;
    let value = "–";
    let util = off || "";
    if (live && p && !off) {
      value = p.rtt_ms === null || p.rtt_ms === undefined ? p.status || "lost" : formatMs(Number(p.rtt_ms));
      util = p.loss_pct === null || p.loss_pct === undefined ? "" : `loss ${p.loss_pct} % of the last 10`;
    } else if (live && !off) {
      util = "waiting for the first ping reply";
    }
    setText(this.rttOut.value, value);
    setText(this.rttOut.util, util);
    this.rttOut.value.classList.toggle("is-lost", Boolean(live && p && !off && p.rtt_ms === null));
    const v = this.diagnosis.verdict();
    setText(this.verdictOut, `Verdict: ${v.verdict}${v.detail ? ` — ${v.detail}` : ""}`);
    this.verdictOut.className = `verdict verdict-${verdictClass(v.verdict)}`;
  }

  renderLog() {
    const key = this.log.map((l) => `${l.ms}${l.type}`).join();
    if (key === this.logKey) return;
    this.logKey = key;
    const items = this.log.map((l) => {
      const li = el("li", `event event-${l.type}`);
      const time = el("time", "", formatTime(l.ms));
      time.dateTime = new Date(l.ms).toISOString();
      li.append(time, ` ${EVENT_WORDS[l.type] || l.type}${l.reason ? `: ${l.reason}` : ""}`);
      return li;
    });
    this.eventList.replaceChildren(...items);
    this.eventList.hidden = items.length === 0;
  }

  /** What the debug hook shows (read-only copies). */
  snapshot() {
    const chart = this.chart;
    const chartPoints = chart ? chart.data[0].length : 0;
    const c = chart ? chart.cursor : null;
    const cursorX =
      chart && c && c.left !== undefined && c.left >= 0 && c.idx !== null && c.idx !== undefined
        ? chart.data[0][c.idx]
        : null;
    return {
      id: this.id,
      state: this.state,
      reason: this.reason,
      visible: this.visible,
      backfill: this.backfillState,
      lastId: this.lastId,
      takenIds: [...this.takenIds],
      sampleIds: this.pointIds.filter((id) => id !== null),
      chartPoints,
      chartNulls: this.down.filter((v) => v === null).length,
      rttChartPoints: this.rttChart && !this.rttBox.hidden ? this.rttChart.data[0].length : 0,
      rttPoints: this.rtt.filter((v) => v !== null).length,
      lossMarks: [...this.lossT],
      rttShown: !this.rttBox.hidden,
      rttRange: this.rttChart ? [this.rttChart.scales.y.min, this.rttChart.scales.y.max] : null,
      ping: this.ping,
      verdict: this.diagnosis.verdict().verdict,
      history: this.history.snapshot(),
      events: this.events.map((e) => ({ type: e.type, id: e.id, reason: e.reason })),
      drawn: this.drawn ? { ...this.drawn } : null,
      // What the chart's cursor reads: the sample under it and its legend's texts.
      cursor:
        cursorX === null || !chart
          ? null
          : {
              id: this.pointIds[this.x.indexOf(cursorX)] ?? null,
              legend: [...chart.root.querySelectorAll(".u-legend .u-value")].map((v) => v.textContent),
            },
      rendered: !isPending(this),
      text: {
        download: this.downOut.value.textContent,
        upload: this.upOut.value.textContent,
        downloadUtil: this.downOut.util.textContent,
        peak: this.peakOut.textContent,
        average: this.avgOut.textContent,
        bytes: this.bytesOut.textContent,
        session: this.sessionOut.textContent,
        status: this.statusOut.textContent,
        rtt: this.rttOut.value.textContent,
        rttUtil: this.rttOut.util.textContent,
        verdict: this.verdictOut.textContent,
      },
      stats: { ...this.stats },
    };
  }
}

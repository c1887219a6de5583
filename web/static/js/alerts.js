// The alerts: the open ones (unacknowledged first, newest first within each) with an
// Acknowledge button, and the last few resolved below them, dimmed.
//
// Two sources feed one map by alert id: `GET /api/alerts?state=open`, read each time the
// page's feed (re)connects, and the feed's alert events (`types=alerts`). An alert only
// moves forward (firing, acknowledged, resolved), so merging never goes back: a REST
// answer that left before an event arrived cannot undo it, and an event replayed on a
// resume changes nothing. Alerts are few and rare: the list is drawn only when one
// changes, never on the panels' 1-second samples.

import { api } from "./api.js";
import { el, find } from "./dom.js";
import { formatCount, formatDateTime, formatTime } from "./format.js";
import { schedule } from "./frame.js";
import { describeRefusal } from "./refusal.js";

/** @typedef {import("./api.js").Alert} Alert */
/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Entry} Entry */
/**
 * @typedef {object} AlertActions
 * @property {(customer: { id: string; name: string }) => Promise<void>} openCustomer start or show its panel
 * @property {(routerId: string) => void} openRouter show it in the router view
 * @property {(open: number, unacknowledged: number) => void} onCount the header's badge
 */
/**
 * An alert's elements, kept while it is listed.
 * @typedef {object} AlertCells
 * @property {HTMLLIElement} li
 * @property {HTMLElement} rule
 * @property {HTMLButtonElement} subject
 * @property {HTMLElement} since
 * @property {HTMLElement} summary
 * @property {HTMLElement} who acknowledged by, or resolved when
 * @property {HTMLButtonElement} ack
 */

const ALERT_TYPES = new Set(["alert_firing", "alert_resolved", "alert_acknowledged"]);
const OPEN_PAGE = 200; // open alerts read per (re)connect; more are counted, not listed
const RESOLVED_KEPT = 5;
const DAY_MS = 86400000;

/** @param {Entry} entry */
export function isAlertEntry(entry) {
  return ALERT_TYPES.has(entry.type);
}

/**
 * An alert event as the alert it says something about (what it does not say: null).
 * @param {Entry} entry
 * @returns {Alert}
 */
function fromEntry(entry) {
  return {
    id: entry.alert_id || "",
    rule_id: entry.rule_id ?? 0,
    rule_name: entry.rule_name || "",
    kind: entry.kind || "",
    subject: entry.subject || "",
    customer_id: entry.customer_id || null,
    customer_name: entry.customer_name ?? null,
    username: entry.username ?? null,
    router: entry.router || null,
    state: entry.type === "alert_resolved" ? "resolved" : "firing",
    started_at: entry.started_at || "",
    resolved_at: entry.resolved_at ?? null,
    acknowledged_at: entry.type === "alert_acknowledged" ? entry.timestamp || null : null,
    acknowledged_by: entry.acknowledged_by ?? null,
    summary: entry.summary || "",
  };
}

/** @param {string | null} text RFC 3339 */
function millis(text) {
  return text ? Date.parse(text) : NaN;
}

/** @param {string | null} text RFC 3339 -> the time today, else date and time */
function when(text) {
  const ms = millis(text);
  if (!Number.isFinite(ms)) return "–";
  return Date.now() - ms < DAY_MS ? formatTime(ms) : formatDateTime(ms);
}

/**
 * @param {Node} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export class AlertList {
  /**
   * @param {HTMLElement} root
   * @param {AlertActions} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.openList = find(root, "#alert-list", HTMLElement);
    this.resolvedList = find(root, "#alert-resolved", HTMLElement);
    this.resolvedTitle = find(root, "#alert-resolved-title", HTMLElement);
    this.note = find(root, "#alerts-note", HTMLElement);
    this.actionLine = find(root, "#alert-action", HTMLElement);
    /** @type {Map<string, Alert>} */
    this.alerts = new Map();
    /** @type {Map<string, AlertCells>} */
    this.cells = new Map();
    /** @type {Set<string>} acknowledgements under way */
    this.pending = new Set();
    this.beyond = 0; // open alerts past the page read
    this.loadError = "";
    this.loadSequence = 0;
    this.loads = 0; // answers taken, for the debug hook
    this.events = 0; // alert events taken
    this.root.addEventListener("click", (event) => this.clicked(event));
  }

  /** Read the open alerts (on every (re)connect of the feed: events may have been missed). */
  async load() {
    const sequence = ++this.loadSequence;
    const openBefore = [...this.alerts.values()].filter((a) => a.state === "firing").map((a) => a.id);
    let answer;
    try {
      answer = await api.alerts({ state: "open", limit: OPEN_PAGE });
    } catch (exc) {
      if (sequence !== this.loadSequence) return;
      const error = /** @type {ApiError} */ (exc);
      if (error.status !== 401) this.loadError = `Alerts unavailable: ${error.message}`;
      this.changed();
      return;
    }
    if (sequence !== this.loadSequence) return; // a newer read answers for both
    this.loads += 1;
    this.loadError = "";
    const listed = new Set(answer.alerts.map((a) => a.id));
    for (const alert of answer.alerts) this.merge(alert);
    this.beyond = Math.max(0, answer.total - answer.alerts.length);
    if (this.beyond === 0) {
      // Open when the question left, and not open in the answer: resolved meanwhile, its
      // event missed (the feed was away). Alerts that came after the question stay.
      for (const id of openBefore) {
        const alert = this.alerts.get(id);
        if (alert && !listed.has(id)) this.merge({ ...alert, state: "resolved" });
      }
    }
    this.changed();
  }

  /** @param {Entry} entry an alert event from the feed */
  receive(entry) {
    if (!entry.alert_id) return;
    this.events += 1;
    this.merge(fromEntry(entry));
    this.changed();
  }

  /**
   * Take what `update` says, never going back (see the top of this module).
   * @param {Alert} update
   */
  merge(update) {
    const old = this.alerts.get(update.id);
    if (!old) {
      this.alerts.set(update.id, { ...update });
      return;
    }
    this.alerts.set(update.id, {
      ...old,
      rule_name: update.rule_name || old.rule_name,
      summary: update.summary || old.summary,
      started_at: old.started_at || update.started_at,
      customer_name: old.customer_name ?? update.customer_name,
      username: old.username ?? update.username,
      state: old.state === "resolved" || update.state === "resolved" ? "resolved" : "firing",
      resolved_at: old.resolved_at || update.resolved_at,
      acknowledged_at: old.acknowledged_at || update.acknowledged_at,
      acknowledged_by: old.acknowledged_by || update.acknowledged_by,
    });
  }

  /** The open ones, unacknowledged first, newest first within each. */
  open() {
    const open = [...this.alerts.values()].filter((a) => a.state === "firing");
    return open.sort(
      (a, b) =>
        Number(Boolean(a.acknowledged_by)) - Number(Boolean(b.acknowledged_by)) ||
        (millis(b.started_at) || 0) - (millis(a.started_at) || 0),
    );
  }

  /** The last RESOLVED_KEPT resolved, newest first; older ones are forgotten. */
  resolved() {
    const resolved = [...this.alerts.values()].filter((a) => a.state === "resolved");
    resolved.sort((a, b) => (millis(b.resolved_at) || 0) - (millis(a.resolved_at) || 0));
    for (const old of resolved.slice(RESOLVED_KEPT)) this.alerts.delete(old.id);
    return resolved.slice(0, RESOLVED_KEPT);
  }

  changed() {
    const open = this.open();
    const unacknowledged = open.filter((a) => !a.acknowledged_by).length;
    this.actions.onCount(open.length + this.beyond, unacknowledged + this.beyond);
    schedule(this);
  }

  render() {
    const open = this.open();
    const resolved = this.resolved();
    let note = this.loadError;
    if (!note && !open.length) note = "No open alert.";
    if (!note && this.beyond) {
      note = `The newest ${formatCount(open.length)} of ${formatCount(open.length + this.beyond)} open alerts.`;
    }
    setText(this.note, note);
    this.note.hidden = !note;
    this.note.classList.toggle("error", Boolean(this.loadError));
    const shown = new Set([...open, ...resolved].map((a) => a.id));
    for (const [id, cells] of this.cells) {
      if (!shown.has(id)) {
        cells.li.remove();
        this.cells.delete(id);
      }
    }
    this.place(this.openList, open.map((a) => this.item(a)));
    this.place(this.resolvedList, resolved.map((a) => this.item(a)));
    this.resolvedTitle.hidden = !resolved.length;
  }

  /**
   * Put `items` in `list` in this order, moving nothing that is in place already (a moved
   * button would lose the keyboard's focus).
   * @param {HTMLElement} list
   * @param {HTMLLIElement[]} items
   */
  place(list, items) {
    const now = [...list.children];
    if (now.length === items.length && items.every((li, i) => now[i] === li)) return;
    list.replaceChildren(...items);
  }

  /**
   * The alert's list item, made once and updated in place.
   * @param {Alert} alert
   */
  item(alert) {
    let cells = this.cells.get(alert.id);
    if (!cells) {
      const li = el("li", "alert");
      li.dataset.alertId = alert.id;
      const head = el("div", "alert-head");
      const rule = el("strong", "alert-rule");
      const subject = el("button", "link alert-subject");
      subject.type = "button";
      const since = el("span", "alert-since");
      head.append(rule, subject, since);
      const summary = el("p", "alert-summary");
      const foot = el("div", "alert-foot");
      const who = el("span", "alert-who");
      const ack = el("button", "button small primary alert-ack", "Acknowledge");
      ack.type = "button";
      foot.append(who, ack);
      li.append(head, summary, foot);
      cells = { li, rule, subject, since, summary, who, ack };
      this.cells.set(alert.id, cells);
    }
    const resolved = alert.state === "resolved";
    cells.li.className = `alert ${resolved ? "alert-resolved" : alert.acknowledged_by ? "alert-acked" : "alert-firing"}`;
    setText(cells.rule, alert.rule_name);
    this.fillSubject(cells.subject, alert);
    setText(cells.since, `since ${when(alert.started_at)}`);
    setText(cells.summary, alert.summary);
    const words = [];
    if (alert.acknowledged_by) words.push(`Acknowledged by ${alert.acknowledged_by}`);
    if (resolved) words.push(alert.resolved_at ? `resolved at ${when(alert.resolved_at)}` : "resolved");
    setText(cells.who, words.join(", "));
    cells.ack.hidden = resolved || Boolean(alert.acknowledged_by);
    const busy = this.pending.has(alert.id);
    cells.ack.disabled = busy;
    setText(cells.ack, busy ? "Acknowledging…" : "Acknowledge");
    cells.ack.setAttribute("aria-label", `Acknowledge ${alert.rule_name}: ${alert.summary}`);
    return cells.li;
  }

  /**
   * A customer's alert names the customer (a click opens its panel); a router's, the
   * router (a click shows it in the router view).
   * @param {HTMLButtonElement} button
   * @param {Alert} alert
   */
  fillSubject(button, alert) {
    if (alert.customer_id) {
      const name = alert.customer_name || alert.username || alert.customer_id;
      const login = alert.username && alert.username !== name ? ` (${alert.username})` : "";
      setText(button, `${name}${login}`);
      button.dataset.customerId = alert.customer_id;
      button.dataset.customerName = name;
      button.title = "Show this customer's live panel";
      button.disabled = false;
    } else {
      const router = alert.router || alert.subject.replace(/^router:/, "");
      setText(button, `Router ${router}`);
      button.dataset.routerId = router;
      button.title = "Show this router";
      button.disabled = !router;
    }
  }

  /** @param {Event} event */
  async clicked(event) {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    const li = button ? button.closest("li[data-alert-id]") : null;
    if (!(button instanceof HTMLButtonElement) || !(li instanceof HTMLElement)) return;
    const id = li.dataset.alertId || "";
    if (button.classList.contains("alert-ack")) {
      await this.acknowledge(id);
      return;
    }
    const { customerId, customerName, routerId } = button.dataset;
    this.say("");
    if (customerId) {
      const name = customerName || "";
      try {
        await this.actions.openCustomer({ id: customerId, name });
      } catch (exc) {
        this.say(describeRefusal(/** @type {ApiError} */ (exc), { name }));
      }
    } else if (routerId) {
      this.actions.openRouter(routerId);
    }
  }

  /** @param {string} id */
  async acknowledge(id) {
    const alert = this.alerts.get(id);
    if (!alert || this.pending.has(id)) return;
    this.pending.add(id);
    this.say("");
    this.changed();
    try {
      const answer = await api.acknowledgeAlert(id);
      this.merge(answer.alert);
    } catch (exc) {
      const error = /** @type {ApiError} */ (exc);
      if (error.code === "alert_not_found") this.alerts.delete(id); // its rule was deleted
      this.say(`Could not acknowledge "${alert.rule_name}": ${error.message}`);
    } finally {
      this.pending.delete(id);
      this.changed();
    }
  }

  /** @param {string} text */
  say(text) {
    this.actionLine.textContent = text;
    this.actionLine.hidden = !text;
  }

  snapshot() {
    /** @param {Alert} a */
    const brief = (a) => ({
      id: a.id,
      rule_name: a.rule_name,
      subject: a.subject,
      summary: a.summary,
      acknowledged_by: a.acknowledged_by,
      state: a.state,
    });
    return {
      loads: this.loads,
      events: this.events,
      beyond: this.beyond,
      open: this.open().map(brief),
      resolved: this.resolved().map(brief),
    };
  }
}

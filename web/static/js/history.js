// A panel's reports: the report of the session it just watched end (GET /api/sessions/{id},
// written by the engine within about 2 s of the stop, so asked again for a few seconds),
// and the customer's past sessions (GET /api/customers/{id}/sessions, newest first), read
// when the operator opens the list.

import { api, reportCsvUrl, sessionsCsvUrl } from "./api.js";
import { el } from "./dom.js";
import { formatBps, formatDateTime, formatTime, formatUptime } from "./format.js";
import { describeRefusal } from "./refusal.js";
import { formatMs, NO_PROBLEM, verdictClass } from "./verdict.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Report} Report */
/** @typedef {import("./api.js").ReportRates} ReportRates */

const REPORT_WAIT_MS = 3500;
const REPORT_RETRY_MS = 400;
const LIST_LIMIT = 10;

/** @param {number} ms */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {number | null | undefined} ms */
function ms(ms) {
  return ms === null || ms === undefined ? "–" : formatMs(ms);
}

/**
 * "8m 12s (61 %)" of the session at 90 % of plan or more; "no plan" without one.
 * @param {ReportRates} rates
 * @param {number | null} duration
 */
function atPlan(rates, duration) {
  if (rates.at_plan_s === null || rates.at_plan_s === undefined) return "no plan";
  const share = duration ? ` (${Math.round((100 * rates.at_plan_s) / duration)} %)` : "";
  return `${formatUptime(rates.at_plan_s)}${share}`;
}

/** @param {Report} r */
function verdictWords(r) {
  if (r.verdict) return r.verdict;
  return r.rtt && r.rtt.probes ? NO_PROBLEM : "no ping";
}

/** @param {Report} r */
function loss(r) {
  if (!r.rtt || !r.rtt.probes) return "no ping";
  const pct = r.rtt.loss_pct === null ? "–" : `${r.rtt.loss_pct} %`;
  return `${pct} of ${r.rtt.probes.toLocaleString()} probes`;
}

/**
 * A report's facts as [label, value] rows, the ticket's words.
 * @param {Report} r
 * @returns {[string, string][]}
 */
export function reportFacts(r) {
  const d = r.download;
  const u = r.upload;
  return [
    ["Duration", `${formatUptime(r.duration_s)} · ${r.samples.toLocaleString()} samples, ${r.missing_s} s missing`],
    ["Average ↓ / ↑", `${formatBps(d.avg_bps)} / ${formatBps(u.avg_bps)}`],
    ["Peak ↓ / ↑", `${formatBps(d.peak_bps)} / ${formatBps(u.peak_bps)}`],
    ["p95 ↓ / ↑", `${formatBps(d.p95_bps)} / ${formatBps(u.p95_bps)}`],
    ["At plan ↓ / ↑", `${atPlan(d, r.duration_s)} / ${atPlan(u, r.duration_s)}`],
    ["RTT idle / load", `${ms(r.rtt && r.rtt.idle_median_ms)} / ${ms(r.rtt && r.rtt.load_median_ms)}`],
    ["RTT median / p95", `${ms(r.rtt && r.rtt.median_ms)} / ${ms(r.rtt && r.rtt.p95_ms)}`],
    ["Loss", loss(r)],
    ["Verdict", verdictWords(r)],
    ["Stopped", r.stop_reason || "–"],
  ];
}

export class SessionHistory {
  /** @param {{ id: string; name?: string; username?: string }} customer */
  constructor(customer) {
    this.customer = customer;
    /** @type {string | null} the session whose report is shown or asked for */
    this.reportFor = null;
    /** @type {Report | null} */
    this.report = null;
    this.reportState = "none"; // none -> waiting -> shown | missing
    /** @type {Report[]} */
    this.items = [];
    this.total = 0;
    this.listState = "closed"; // closed -> loading -> shown | failed
    this.loads = 0;

    this.reportBox = el("section", "report");
    this.reportBox.hidden = true;
    this.reportBox.setAttribute("aria-label", `Report of ${customer.name || customer.username}'s last session`);
    this.reportTitle = el("h4", "report-title");
    this.reportFacts = el("dl", "report-facts");
    this.reportNote = el("p", "report-note");
    this.reportNote.setAttribute("role", "status");
    this.reportCsv = el("a", "button link", "Report CSV");
    this.reportBox.append(this.reportTitle, this.reportNote, this.reportFacts, this.reportCsv);

    this.listBox = el("details", "history");
    const summary = el("summary", "", "Past sessions");
    this.listNote = el("p", "history-note");
    this.listNote.setAttribute("role", "status");
    this.list = el("ol", "history-list");
    const csv = el("a", "button link", "Sessions CSV");
    csv.href = sessionsCsvUrl(customer.id);
    csv.setAttribute("download", `sessions-${customer.username || customer.id}.csv`);
    this.listBox.append(summary, this.listNote, this.list, csv);
    this.listBox.addEventListener("toggle", () => {
      if (this.listBox.open) this.load();
    });
  }

  /** The elements to put in the panel, in order. */
  get elements() {
    return [this.reportBox, this.listBox];
  }

  /** Read the customer's newest sessions again (when the list is open). */
  async load() {
    if (!this.listBox.open) return;
    this.listState = "loading";
    this.loads += 1;
    const load = this.loads;
    this.listNote.textContent = "Loading…";
    this.listNote.hidden = false;
    try {
      const answer = await api.customerSessions(this.customer.id, { limit: LIST_LIMIT });
      if (load !== this.loads) return; // a newer load is on its way
      this.items = answer.items;
      this.total = answer.total;
      this.listState = "shown";
      this.renderList();
    } catch (exc) {
      if (load !== this.loads) return;
      this.listState = "failed";
      this.listNote.textContent = `Could not read the past sessions: ${describeRefusal(
        /** @type {ApiError} */ (exc),
        this.customer,
      )}`;
    }
  }

  renderList() {
    const rows = this.items.map((r) => {
      const li = el("li", r.partial ? "history-item is-partial" : "history-item");
      li.dataset.sessionId = r.session_id;
      const start = el("time", "", formatDateTime(Date.parse(r.started_at)));
      start.dateTime = r.started_at;
      const head = el("p", "history-head");
      head.append(start, ` · ${formatUptime(r.duration_s)}`);
      if (r.partial) head.append(" · ", el("span", "partial", "partial"));
      const rates = el(
        "p",
        "",
        `↓ avg ${formatBps(r.download.avg_bps)} · peak ${formatBps(r.download.peak_bps)} · ` +
          `at plan ${atPlan(r.download, r.duration_s)}`,
      );
      const rtt = el(
        "p",
        "",
        `RTT ${ms(r.rtt && r.rtt.idle_median_ms)} idle / ${ms(r.rtt && r.rtt.load_median_ms)} load · loss ${loss(r)}`,
      );
      const verdict = el("p", `history-verdict verdict-${verdictClass(verdictWords(r))}`, verdictWords(r));
      const show = el("button", "button small", "Report");
      show.type = "button";
      const when = formatDateTime(Date.parse(r.started_at));
      show.setAttribute("aria-label", `Show the report of the session started ${when}`);
      show.addEventListener("click", () => this.show(r, "Report of the session started"));
      const csv = el("a", "button link small", "CSV");
      csv.href = reportCsvUrl(r.session_id);
      csv.setAttribute("download", `session-${r.session_id}.csv`);
      const actions = el("p", "history-actions");
      actions.append(show, csv);
      li.append(head, rates, rtt, verdict, actions);
      return li;
    });
    this.list.replaceChildren(...rows);
    const shown = this.items.length;
    const more = this.total > shown ? `The newest ${shown} of ${this.total} (all in the CSV).` : "";
    this.listNote.textContent = this.items.length ? more : "No past session yet.";
    this.listNote.hidden = !this.listNote.textContent;
  }

  /**
   * The panel's session ended: show its report once the engine has written it.
   * @param {string} sessionId
   */
  async reportEnded(sessionId) {
    if (this.reportFor === sessionId) return;
    this.reportFor = sessionId;
    this.reportState = "waiting";
    this.reportBox.hidden = false;
    this.reportTitle.textContent = "Session report";
    this.reportNote.textContent = "Waiting for the session's report…";
    this.reportFacts.replaceChildren();
    this.reportCsv.hidden = true;
    const deadline = Date.now() + REPORT_WAIT_MS;
    for (;;) {
      try {
        const report = await api.report(sessionId);
        if (this.reportFor !== sessionId) return;
        this.show(report, "Report of the session that ended");
        this.load(); // the list gains it
        return;
      } catch (exc) {
        const error = /** @type {ApiError} */ (exc);
        if (this.reportFor !== sessionId) return;
        // Not written yet (404), or the server is away for a moment: ask again, a while.
        const again = error.status === 404 || error.status === 0 || error.status >= 500;
        if (!again || Date.now() + REPORT_RETRY_MS > deadline) {
          this.reportState = "missing";
          this.reportNote.textContent =
            error.status === 404
              ? "No report was written for this session (yet): see Past sessions later."
              : `Could not read the session's report: ${describeRefusal(error, this.customer)}`;
          return;
        }
      }
      await pause(REPORT_RETRY_MS);
    }
  }

  /**
   * @param {Report} report
   * @param {string} title
   */
  show(report, title) {
    this.report = report;
    this.reportFor = report.session_id;
    this.reportState = "shown";
    this.reportBox.hidden = false;
    const started = Date.parse(report.started_at);
    this.reportTitle.textContent = `${title} ${formatDateTime(started)}${
      report.ended_at ? `, ended ${formatTime(Date.parse(report.ended_at))}` : ""
    }`;
    this.reportNote.textContent = report.partial
      ? "Partial: some of the session's samples had expired before the report was finished."
      : "";
    this.reportNote.hidden = !report.partial;
    const rows = reportFacts(report).map(([label, value]) => {
      const wrap = el("div", label === "Verdict" ? `stat verdict-${verdictClass(value)}` : "stat");
      wrap.append(el("dt", "", label), el("dd", "", value));
      return wrap;
    });
    this.reportFacts.replaceChildren(...rows);
    this.reportCsv.hidden = false;
    this.reportCsv.href = reportCsvUrl(report.session_id);
    this.reportCsv.setAttribute("download", `session-${report.session_id}.csv`);
  }

  /** What the debug hook shows. */
  snapshot() {
    return {
      reportFor: this.reportFor,
      reportState: this.reportState,
      report: this.report ? { session_id: this.report.session_id, verdict: this.report.verdict } : null,
      reportText: this.reportBox.hidden ? null : this.reportBox.innerText,
      listState: this.listState,
      items: this.items.map((r) => r.session_id),
      total: this.total,
      listText: [...this.list.children].map((li) => /** @type {HTMLElement} */ (li).innerText),
    };
  }
}


// The line diagnosis in words, from a session's own samples as the panel saw them: the
// same rules as the session report's (tasks/report.py; README, Dashboard), with the
// thresholds the server serves (DIAG_RTT_RISE_MS, DIAG_MIN_PROBES, in GET /api/session).
//
// Each latency probe is classed by the newest traffic sample before it: "load" when the
// line was at 80 % of its plan or more in either direction, "idle" when every direction
// with a plan was below 20 %; between the two, or without a plan, it is neither.

export const LOAD_SHARE = 0.8;
export const IDLE_SHARE = 0.2;

export const SATURATED = "saturated by own traffic";
export const LOSS_WITHOUT_LOAD = "loss without load";
export const NO_PROBLEM = "no problem seen";
export const NOT_ENOUGH = "not enough data";

/** @typedef {{ rtt_rise_ms: number; min_probes: number }} Thresholds as GET /api/session serves them */
/** @typedef {"load" | "idle" | null} Level */
/**
 * @typedef {object} Verdict
 * @property {string} verdict one of the four words above
 * @property {string} detail the numbers behind it
 * @property {number | null} idleMs median RTT while idle
 * @property {number | null} loadMs median RTT under load
 */

/** The settings' defaults, until the server's answer is in. */
const thresholds = { riseMs: 30, minProbes: 5 };

/** @param {Thresholds | undefined} served */
export function setThresholds(served) {
  if (!served) return;
  if (Number.isFinite(served.rtt_rise_ms)) thresholds.riseMs = served.rtt_rise_ms;
  if (Number.isFinite(served.min_probes)) thresholds.minProbes = served.min_probes;
}

/**
 * The class of a traffic sample's moment: its rates against the plan's (bps).
 * @param {number} down
 * @param {number} up
 * @param {number | null | undefined} planDown
 * @param {number | null | undefined} planUp
 * @returns {Level}
 */
export function levelOf(down, up, planDown, planUp) {
  const shares = [];
  if (planDown) shares.push(down / planDown);
  if (planUp) shares.push(up / planUp);
  if (!shares.length) return null; // no plan: neither
  const most = Math.max(...shares);
  if (most >= LOAD_SHARE) return "load";
  return most < IDLE_SHARE ? "idle" : null;
}

/** @param {number[]} values (not empty) */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** @param {number} ms */
export function formatMs(ms) {
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** One session's probes, classed as they arrive; the verdict worked out when asked. */
export class Diagnosis {
  constructor() {
    /** @type {Level} the class of the newest traffic sample */
    this.level = null;
    /** @type {number[]} answered probes' RTT while idle (ms) */
    this.idle = [];
    /** @type {number[]} answered probes' RTT under load (ms) */
    this.load = [];
    this.probes = 0;
    this.lost = 0;
    this.lostIdle = 0;
    /** @type {Verdict | null} */
    this.cached = null;
  }

  /**
   * A traffic sample: rates and the plan's (bps).
   * @param {number} down
   * @param {number} up
   * @param {number | null | undefined} planDown
   * @param {number | null | undefined} planUp
   */
  sample(down, up, planDown, planUp) {
    this.level = levelOf(down, up, planDown, planUp);
  }

  /**
   * A probe: its RTT (null when lost) and status (null when answered).
   * @param {number | null | undefined} rttMs
   * @param {string | null | undefined} status
   */
  probe(rttMs, status) {
    const lost = (status !== null && status !== undefined) || rttMs === null || rttMs === undefined;
    this.probes += 1;
    this.cached = null;
    if (lost) {
      this.lost += 1;
      if (this.level === "idle") this.lostIdle += 1;
    } else if (this.level === "idle") {
      this.idle.push(Number(rttMs));
    } else if (this.level === "load") {
      this.load.push(Number(rttMs));
    }
  }

  /** @returns {Verdict} */
  verdict() {
    if (this.cached) return this.cached;
    const { riseMs, minProbes } = thresholds;
    const idleMs = this.idle.length ? median(this.idle) : null;
    const loadMs = this.load.length ? median(this.load) : null;
    const parts = [];
    if (idleMs !== null) parts.push(`RTT ${formatMs(idleMs)} idle (${this.idle.length} probes)`);
    if (loadMs !== null) parts.push(`${formatMs(loadMs)} under load (${this.load.length})`);
    if (this.lost) parts.push(`${this.lost} of ${this.probes} probes lost`);
    let verdict = NOT_ENOUGH;
    if (
      this.idle.length >= minProbes &&
      this.load.length >= minProbes &&
      idleMs !== null &&
      loadMs !== null &&
      loadMs - idleMs > riseMs
    ) {
      verdict = SATURATED;
      parts.unshift(`RTT rose by ${formatMs(loadMs - idleMs)} under load (threshold ${riseMs} ms)`);
    } else if (this.lostIdle > 0) {
      verdict = LOSS_WITHOUT_LOAD;
      parts.unshift(`${this.lostIdle} probes lost below ${IDLE_SHARE * 100} % of plan`);
    } else if (this.idle.length >= minProbes || this.load.length >= minProbes) {
      verdict = NO_PROBLEM;
    } else if (!this.probes) {
      parts.push("no RTT probe yet");
    } else {
      parts.push(`needs ${minProbes} answered probes idle or under load`);
    }
    this.cached = { verdict, detail: parts.join(" · "), idleMs, loadMs };
    return this.cached;
  }
}

/**
 * The CSS class of a verdict's words (verdict-saturated, -loss, -ok, -unknown).
 * @param {string} words
 */
export function verdictClass(words) {
  if (words === SATURATED) return "saturated";
  if (words === LOSS_WITHOUT_LOAD) return "loss";
  return words === NO_PROBLEM ? "ok" : "unknown";
}

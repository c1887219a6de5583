// Formatting: rates, bytes, percentages and times, as the API and the stream write them.

const RATE_UNITS = ["bps", "kbps", "Mbps", "Gbps", "Tbps"];
const BYTE_UNITS = ["B", "kB", "MB", "GB", "TB"];

/** Two decimals exactly as Python's f"{v:.2f}": toFixed, except that an exact tie
 * (x.xx5 held exactly, which only x.125, x.375, x.625 and x.875 can be) rounds to even.
 * @param {number} v
 */
export function fixed2(v) {
  if (Number.isInteger(v * 8) && !Number.isInteger(v * 4)) {
    const down = Math.floor(v * 100); // exact: v has at most three binary fraction digits
    const hundredths = down % 2 === 0 ? down : down + 1;
    return (hundredths / 100).toFixed(2);
  }
  return v.toFixed(2);
}

/**
 * @param {number} value
 * @param {string[]} units
 */
function si(value, units) {
  let v = Number(value);
  let unit = 0;
  // Promote after rounding, so 999 999 reads "1.00 Mbps", not "1000.00 kbps"
  // (tasks/message.py format_bps does the same).
  while (unit < units.length - 1 && Number(fixed2(v)) >= 1000) {
    v /= 1000;
    unit += 1;
  }
  return `${fixed2(v)} ${units[unit]}`;
}

/**
 * 5230000 -> "5.23 Mbps" (SI, 1 k = 1000, two decimals); null -> "–".
 * @param {number | null | undefined} bps
 */
export function formatBps(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(Number(bps)) || bps < 0) return "–";
  return si(bps, RATE_UNITS);
}

/**
 * A chart axis label: fewer decimals than formatBps ("5.2M", "950k", "0").
 * @param {number} bps
 */
export function axisBps(bps) {
  if (!Number.isFinite(bps)) return "";
  const units = ["", "k", "M", "G", "T"];
  let v = Math.abs(bps);
  let unit = 0;
  while (unit < units.length - 1 && v >= 1000) {
    v /= 1000;
    unit += 1;
  }
  const digits = v >= 100 || Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)}${units[unit]}`;
}

/**
 * 3270000 -> "3.27 MB" (SI, like the rates).
 * @param {number | null | undefined} bytes
 */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "–";
  return si(bytes, BYTE_UNITS);
}

/**
 * 89.06 -> "89.06 %"; null (no package speed) -> "–".
 * @param {number | null | undefined} value
 */
export function formatPercent(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  return `${fixed2(Number(value))} %`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "medium",
});

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/**
 * Milliseconds since the epoch -> "14:03" (or "02:03 PM") in the browser's zone and locale.
 * @param {number} ms
 */
export function formatClock(ms) {
  return Number.isFinite(ms) ? clockFormat.format(new Date(ms)) : "";
}

/**
 * Milliseconds since the epoch -> "14:03:27" in the browser's time zone.
 * @param {number | null} ms
 */
export function formatTime(ms) {
  return ms !== null && Number.isFinite(ms) ? timeFormat.format(new Date(ms)) : "–";
}

/**
 * Milliseconds since the epoch -> date and time in the browser's time zone.
 * @param {number} ms
 */
export function formatDateTime(ms) {
  return Number.isFinite(ms) ? dateTimeFormat.format(new Date(ms)) : "–";
}

/**
 * "1795517328938-0" -> 1795517328938 (when Redis appended the entry).
 * @param {string} id
 */
export function idMillis(id) {
  return Number(String(id).split("-", 1)[0]);
}

/**
 * Compare two stream ids: negative, 0 or positive.
 * @param {string} a
 * @param {string} b
 */
export function compareIds(a, b) {
  const [am, as = "0"] = String(a).split("-");
  const [bm, bs = "0"] = String(b).split("-");
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  return Number(as) - Number(bs);
}

/**
 * "1,234" in the browser's locale.
 * @param {number | undefined} n (a refusal's field that is missing reads "NaN")
 */
export function formatCount(n) {
  return Number(n).toLocaleString();
}

/** @type {Record<string, string>} */
const SERVICE_NAMES = { pppoe: "PPPoE", hotspot: "Hotspot", static_ip: "Static IP" };

/** @param {string} type */
export function serviceName(type) {
  return SERVICE_NAMES[type] || type || "–";
}

/**
 * A session's uptime: 93784 -> "1d 2h", 3725 -> "1h 02m", 125 -> "2m 05s", 42 -> "42s".
 * @param {number | null | undefined} seconds
 */
export function formatUptime(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.floor(seconds);
  const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${two(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  return `${s}s`;
}

// The charts of one panel: uPlot (vendored, global `uPlot`), download and upload of the
// last five minutes, the package speeds as dashed lines, status events as markers; under
// it the RTT of the customer's ping on the same time axis (both are given the same x
// range at each frame, and their cursors move together), lost probes as red marks.

import { axisBps, formatBps, formatClock, formatTime } from "./format.js";

/** @typedef {{ t: number; type: string }} Marker an event to mark: its time (s) and type */

export const WINDOW_SECONDS = 300;
export const CHART_HEIGHT = 150;
export const RTT_HEIGHT = 64;
// Both charts' y axes are this wide, and their right edges this far from the plot (room
// for the last time label), so their plotting areas line up in time.
const Y_AXIS_SIZE = 48;
const RIGHT_PAD = 24;
const LOSS_COLOR = "#dc2626";
const RTT_COLOR = "#7c3aed";

/** @type {Record<string, string>} */
export const EVENT_COLORS = {
  started: "#15803d",
  resumed: "#15803d",
  reconnecting: "#b45309",
  offline: "#b91c1c",
  stopped: "#4b5563",
  gap: "#7c3aed",
};

const COLORS = { download: "#1d4ed8", upload: "#0f766e", package: "#64748b" };

/**
 * @param {() => Marker[]} getEvents
 * @returns {uPlot.Plugin}
 */
function markers(getEvents) {
  return {
    hooks: {
      draw: [
        (u) => {
          const events = getEvents();
          if (!events.length) return;
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          const ratio = uPlot.pxRatio;
          ctx.save();
          ctx.lineWidth = Math.max(1, ratio);
          ctx.font = `${Math.round(10 * ratio)}px system-ui, sans-serif`;
          ctx.textBaseline = "top";
          const rowEnds = [-Infinity, -Infinity, -Infinity]; // labels close together stagger
          const lineHeight = 12 * ratio;
          for (const event of events) {
            const x = Math.round(u.valToPos(event.t, "x", true));
            if (x < left || x > left + width) continue;
            const color = EVENT_COLORS[event.type] || "#4b5563";
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.setLineDash([4 * ratio, 3 * ratio]);
            ctx.beginPath();
            ctx.moveTo(x + 0.5, top);
            ctx.lineTo(x + 0.5, top + height);
            ctx.stroke();
            const label = event.type;
            const textWidth = ctx.measureText(label).width;
            const tx = x + 3 * ratio + textWidth > left + width ? x - 3 * ratio - textWidth : x + 3 * ratio;
            const row = rowEnds.findIndex((end) => tx > end + 10 * ratio);
            if (row === -1) continue; // three labels on top of each other: the lines say enough
            rowEnds[row] = tx + textWidth;
            ctx.fillText(label, tx, top + 2 * ratio + row * lineHeight);
          }
          ctx.restore();
        },
      ],
    },
  };
}

// The keyboard's cursor: the time of the point it reads, kept on that point while the
// chart scrolls (a mouse's cursor stays at its pixel instead, as in every uPlot chart).
/** @type {WeakMap<uPlot, number>} */
const pinned = new WeakMap();

/**
 * Where a key takes the cursor: {idx, step}, `step` the way to go on past gap points.
 * @param {string} key
 * @param {number | null | undefined} idx
 * @param {number} last
 * @returns {{ idx: number; step: number } | null}
 */
function moveFor(key, idx, last) {
  const none = idx === null || idx === undefined;
  if (key === "Home") return { idx: 0, step: 1 };
  if (key === "End") return { idx: last, step: -1 };
  if (key === "ArrowLeft") return { idx: none ? last : idx - 1, step: -1 };
  if (key === "ArrowRight") return { idx: none ? 0 : idx + 1, step: 1 };
  return null;
}

/** @param {uPlot} u */
function hideCursor(u) {
  pinned.delete(u);
  u.setCursor({ left: -10, top: -10 });
}

/**
 * @param {HTMLElement} box the element the chart is drawn in (focusable)
 * @returns {uPlot.Plugin}
 */
function keyboardCursor(box) {
  return {
    hooks: {
      init: [
        (u) => {
          box.addEventListener("keydown", (event) => {
            if (event.key === "Escape") return hideCursor(u);
            const last = u.data[0].length - 1;
            const move = moveFor(event.key, u.cursor.idx, last);
            if (!move || last < 0) return;
            event.preventDefault();
            let { idx } = move;
            // A break in the line (a gap point) has no values: step over it.
            while (idx >= 0 && idx <= last && u.data[1][idx] === null) idx += move.step;
            if (idx < 0 || idx > last) return; // at the end already
            pinned.set(u, u.data[0][idx]);
            placeCursor(u, u.data[0][idx]);
          });
          // A mouse takes the cursor back.
          u.over.addEventListener("mousemove", () => pinned.delete(u));
        },
      ],
    },
  };
}

/**
 * @param {uPlot} u
 * @param {number} x
 */
function placeCursor(u, x) {
  const left = u.valToPos(x, "x");
  if (left < 0 || left > u.over.clientWidth) return hideCursor(u); // scrolled out of the window
  u.setCursor({ left, top: u.over.clientHeight / 2 });
}

/**
 * After new data: the keyboard's cursor stays on the point it was reading.
 * @param {uPlot} u
 */
export function keepCursor(u) {
  const x = pinned.get(u);
  if (x !== undefined) placeCursor(u, x);
}

/**
 * A uPlot chart in `element`. `getEvents()` returns [{t (s), type}] to mark.
 * Data: [x (s), download, upload, package download] (null = a gap).
 * `syncKey`: the panel's charts share their cursor.
 * @param {HTMLElement} element
 * @param {() => Marker[]} getEvents
 * @param {number} width
 * @param {string} syncKey
 */
export function createChart(element, getEvents, width, syncKey) {
  /** @type {(u: uPlot, v: number | null | undefined) => string} */
  const rate = (u, v) => (v === null || v === undefined ? "–" : formatBps(v));
  /** @type {uPlot.Options} */
  const options = {
    width: Math.max(200, width),
    height: CHART_HEIGHT,
    padding: [null, RIGHT_PAD, null, null],
    pxAlign: 0,
    cursor: { drag: { x: false, y: false }, points: { size: 5 }, sync: { key: syncKey } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true },
      y: { range: (u, min, max) => [0, Math.max(1000, (max || 0) * 1.08)] },
    },
    axes: [
      {
        stroke: "#475569",
        grid: { stroke: "#e2e8f0" },
        ticks: { stroke: "#cbd5e1" },
        // Whole minutes, in the browser's locale and zone like every other time on the page.
        incrs: [60, 120, 300, 600, 900, 1800, 3600],
        space: 60,
        size: 30,
        values: (u, splits) => splits.map((s) => formatClock(s * 1000)),
      },
      {
        stroke: "#475569",
        grid: { stroke: "#e2e8f0" },
        ticks: { stroke: "#cbd5e1" },
        size: Y_AXIS_SIZE,
        values: (u, values) => values.map(axisBps),
      },
    ],
    series: [
      { label: "Time", value: (u, v) => (v === null || v === undefined ? "–" : formatTime(v * 1000)) },
      { label: "Download", stroke: COLORS.download, width: 1.5, fill: "rgba(29,78,216,0.08)", value: rate },
      { label: "Upload", stroke: COLORS.upload, width: 1.5, value: rate },
      { label: "Package ↓", stroke: COLORS.package, width: 1, dash: [6, 4], value: rate },
    ],
    plugins: [markers(getEvents), keyboardCursor(element)],
  };
  return new uPlot(options, [[], [], [], []], element);
}

/**
 * Lost probes (timeout, unreachable) as red marks along the top of the RTT chart.
 * @param {() => number[]} getLosses their times (s)
 * @returns {uPlot.Plugin}
 */
function lossMarks(getLosses) {
  return {
    hooks: {
      draw: [
        (u) => {
          const losses = getLosses();
          if (!losses.length) return;
          const { ctx } = u;
          const { left, top, width } = u.bbox;
          const ratio = uPlot.pxRatio;
          const half = 2.5 * ratio;
          ctx.save();
          ctx.fillStyle = LOSS_COLOR;
          for (const t of losses) {
            const x = Math.round(u.valToPos(t, "x", true));
            if (x < left || x > left + width) continue;
            ctx.beginPath(); // a small triangle pointing down from the top edge
            ctx.moveTo(x - half, top);
            ctx.lineTo(x + half, top);
            ctx.lineTo(x, top + 2 * half);
            ctx.closePath();
            ctx.fill();
          }
          ctx.restore();
        },
      ],
    },
  };
}

/**
 * The RTT chart under a panel's bandwidth chart. Data: [x (s), rtt (ms; null = lost or a
 * gap)]; `getLosses()` the lost probes' times (s). No time axis of its own: the chart
 * above has it, and the same x range.
 * @param {HTMLElement} element
 * @param {() => number[]} getLosses
 * @param {number} width
 * @param {string} syncKey
 */
export function createRttChart(element, getLosses, width, syncKey) {
  /** @type {uPlot.Options} */
  const options = {
    width: Math.max(200, width),
    height: RTT_HEIGHT,
    padding: [6, RIGHT_PAD, 7, null],
    pxAlign: 0,
    cursor: { drag: { x: false, y: false }, points: { size: 4 }, sync: { key: syncKey } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true },
      y: { range: (u, min, max) => [0, Math.max(20, (max || 0) * 1.15)] },
    },
    axes: [
      { show: false },
      {
        stroke: "#475569",
        grid: { stroke: "#e2e8f0" },
        ticks: { stroke: "#cbd5e1" },
        size: Y_AXIS_SIZE,
        space: 20,
        // Plain numbers, as narrow as the bandwidth's labels (the key says "RTT (ms)").
        values: (u, values) => values.map((v) => String(v)),
      },
    ],
    series: [
      { label: "Time", value: (u, v) => (v === null || v === undefined ? "–" : formatTime(v * 1000)) },
      {
        label: "RTT",
        stroke: RTT_COLOR,
        width: 1.25,
        value: (u, v) => (v === null || v === undefined ? "–" : `${v} ms`),
      },
    ],
    plugins: [lossMarks(getLosses)],
  };
  return new uPlot(options, [[], []], element);
}

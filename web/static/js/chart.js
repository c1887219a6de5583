// The chart of one panel: uPlot (vendored, global `uPlot`), download and upload of the
// last five minutes, the package speeds as dashed lines, status events as markers.

import { axisBps, formatBps, formatClock, formatTime } from "./format.js";

export const WINDOW_SECONDS = 300;
export const CHART_HEIGHT = 150;

export const EVENT_COLORS = {
  started: "#15803d",
  resumed: "#15803d",
  reconnecting: "#b45309",
  offline: "#b91c1c",
  stopped: "#4b5563",
  gap: "#7c3aed",
};

const COLORS = { download: "#1d4ed8", upload: "#0f766e", package: "#64748b" };

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

/**
 * A uPlot chart in `element`. `getEvents()` returns [{t (s), type}] to mark.
 * Data: [x (s), download, upload, package download] (null = a gap).
 */
export function createChart(element, getEvents, width) {
  const rate = (u, v) => (v === null || v === undefined ? "–" : formatBps(v));
  const options = {
    width: Math.max(200, width),
    height: CHART_HEIGHT,
    pxAlign: 0,
    cursor: { drag: { x: false, y: false }, points: { size: 5 } },
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
        size: 48,
        values: (u, values) => values.map(axisBps),
      },
    ],
    series: [
      { label: "Time", value: (u, v) => (v === null || v === undefined ? "–" : formatTime(v * 1000)) },
      { label: "Download", stroke: COLORS.download, width: 1.5, fill: "rgba(29,78,216,0.08)", value: rate },
      { label: "Upload", stroke: COLORS.upload, width: 1.5, value: rate },
      { label: "Package ↓", stroke: COLORS.package, width: 1, dash: [6, 4], value: rate },
    ],
    plugins: [markers(getEvents)],
  };
  return new uPlot(options, [[], [], [], []], element);
}

// One place where the page draws: everything that changes marks itself dirty, and the
// next animation frame renders all of it at once (many panels, one layout pass).
// Browsers run no animation frames in a hidden tab, so nothing is drawn there; the
// data keeps arriving and is drawn once when the tab is shown again.

/** @typedef {{ render(): void }} Drawable */

/** @type {Set<Drawable>} */
const dirty = new Set();
let requested = false;
/** @type {Set<(hidden: boolean) => void>} */
const hiddenListeners = new Set();

/**
 * Draw `item` in the next animation frame.
 * @param {Drawable} item
 */
export function schedule(item) {
  dirty.add(item);
  if (!requested && !document.hidden) {
    requested = true;
    requestAnimationFrame(flush);
  }
}

/**
 * True while `item` waits for its frame: what it shows is not yet what it holds.
 * @param {Drawable} item
 */
export function isPending(item) {
  return dirty.has(item);
}

// A frame's budget: samples of many customers tend to arrive together; drawing them
// all in one frame would be one long task a second, so the rest wait for the next.
const FRAME_BUDGET_MS = 8;

function flush() {
  requested = false;
  const started = performance.now();
  for (const item of dirty) {
    dirty.delete(item);
    try {
      item.render();
    } catch (exc) {
      console.warn("render failed", exc); // one broken panel must not stop the others
    }
    if (performance.now() - started > FRAME_BUDGET_MS) break;
  }
  if (dirty.size && !document.hidden) {
    requested = true;
    requestAnimationFrame(flush);
  }
}

/**
 * `fn(hidden)` when the tab is hidden or shown.
 * @param {(hidden: boolean) => void} fn
 */
export function onVisibility(fn) {
  hiddenListeners.add(fn);
}

document.addEventListener("visibilitychange", () => {
  hiddenListeners.forEach((fn) => fn(document.hidden));
  if (!document.hidden && dirty.size && !requested) {
    requested = true;
    requestAnimationFrame(flush);
  }
});

// The server's clock, seen through the stream ids (Redis appends them): the charts'
// "now" is the server's, so a browser whose clock is off still shows the newest
// samples at the right edge. The offset is the smallest (local - id time) of recent
// live entries: delivery only ever adds to it.
/** @type {number[]} */
const offsets = [];
let offset = 0;

/** @param {number} idMs when Redis appended a live entry (its id's milliseconds) */
export function observeServerTime(idMs) {
  offsets.push(Date.now() - idMs);
  if (offsets.length > 30) offsets.shift();
  offset = Math.min(...offsets);
}

/** Now on the server's clock, in milliseconds. */
export function serverNow() {
  return Date.now() - offset;
}

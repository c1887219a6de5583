// The customer list: search as you type (debounced; Enter searches at once), filters
// for router, service type and status, monitored customers first, and pages of
// PAGE_SIZE over the API's limit/offset/total, so 10,000 customers stay one request.

import { api } from "./api.js";
import { el, find } from "./dom.js";
import { formatCount, serviceName } from "./format.js";
import { describeRefusal } from "./refusal.js";

/** @typedef {import("./api.js").ApiError} ApiError */
/** @typedef {import("./api.js").Customer} Customer */
/** @typedef {import("./api.js").Router} Router */
/** @typedef {{ start(customer: Customer): Promise<void>; stop(customer: Customer): Promise<void> }} Actions */

// A phone shows fewer rows, so the live panels below the list are within reach.
const PAGE_SIZE = window.matchMedia("(max-width: 760px)").matches ? 10 : 25;
const DEBOUNCE_MS = 250;

export class CustomerList {
  /**
   * actions: start(customer) and stop(customer), each a promise that throws ApiError.
   * @param {HTMLElement} root
   * @param {Actions} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.form = find(root, "#search-form", HTMLFormElement);
    this.query = find(root, "#search-q", HTMLInputElement);
    this.router = find(root, "#filter-router", HTMLSelectElement);
    this.service = find(root, "#filter-service", HTMLSelectElement);
    this.status = find(root, "#filter-status", HTMLSelectElement);
    this.list = find(root, "#customer-list", HTMLElement);
    this.summary = find(root, "#customer-summary", HTMLElement);
    this.prev = find(root, "#page-prev", HTMLButtonElement);
    this.next = find(root, "#page-next", HTMLButtonElement);
    this.offset = 0;
    this.total = 0;
    /** more customers match than `total` (the API's count stopped there) */
    this.totalCapped = false;
    this.sequence = 0;
    /** @type {Map<string, Customer>} id -> customer, for the panels' details */
    this.known = new Map();
    /** @type {Map<string, string>} id -> words, shown under the row until the next action */
    this.refusals = new Map();
    /** @type {number | undefined} */
    this.debounce = undefined;

    this.query.addEventListener("input", () => this.searchSoon());
    for (const select of [this.router, this.service, this.status]) {
      select.addEventListener("change", () => this.search());
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search();
    });
    this.prev.addEventListener("click", () => this.page(-1));
    this.next.addEventListener("click", () => this.page(1));
  }

  searchSoon() {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.search(), DEBOUNCE_MS);
  }

  search() {
    clearTimeout(this.debounce);
    this.offset = 0;
    return this.load();
  }

  /** @param {number} step */
  page(step) {
    const offset = this.offset + step * PAGE_SIZE;
    if (offset < 0 || offset >= this.total) return;
    this.offset = offset;
    this.load();
  }

  /** @param {Router[]} routers */
  setRouters(routers) {
    const chosen = this.router.value;
    const options = [new Option("All", "")];
    for (const router of routers) {
      const label = router.name && router.name !== router.id ? `${router.name} (${router.id})` : router.id;
      options.push(new Option(label, router.id));
    }
    this.router.replaceChildren(...options);
    this.router.value = routers.some((r) => r.id === chosen) ? chosen : "";
  }

  async load() {
    const sequence = ++this.sequence;
    this.root.setAttribute("aria-busy", "true");
    try {
      const answer = await api.customers({
        q: this.query.value.trim(),
        router: this.router.value,
        service_type: this.service.value,
        status: this.status.value,
        monitored_first: true,
        limit: PAGE_SIZE,
        offset: this.offset,
      });
      if (sequence !== this.sequence) return; // a newer search answered first
      this.total = answer.total;
      this.totalCapped = answer.total_capped === true; // absent from an older server
      for (const customer of answer.customers) this.known.set(customer.id, customer);
      this.render(answer.customers);
    } catch (exc) {
      if (sequence !== this.sequence) return;
      const error = /** @type {ApiError} */ (exc);
      this.summary.textContent = `Customers could not be loaded: ${describeRefusal(error)}`;
    } finally {
      if (sequence === this.sequence) this.root.removeAttribute("aria-busy");
    }
  }

  /** @param {Customer[]} customers */
  render(customers) {
    const first = this.total ? this.offset + 1 : 0;
    const last = this.offset + customers.length;
    if (!this.total) this.summary.textContent = "No customer matches.";
    else if (this.total === 1) this.summary.textContent = "1 customer";
    else {
      // A capped total is a lower bound: "of 1,025+". Paging still works from it: it
      // always reaches past this page's end.
      const of = `${formatCount(this.total)}${this.totalCapped ? "+" : ""}`;
      this.summary.textContent = `${formatCount(first)}–${formatCount(last)} of ${of} customers`;
    }
    this.prev.disabled = this.offset === 0;
    this.next.disabled = last >= this.total;
    this.list.replaceChildren(...customers.map((c) => this.row(c)));
  }

  /** @param {Customer} customer */
  row(customer) {
    const li = el("li", "customer");
    li.dataset.customerId = customer.id;
    const info = el("div", "customer-info");
    const name = el("span", "customer-name", customer.name);
    const login = customer.pppoe_username || customer.hotspot_username || customer.username;
    const meta = el(
      "span",
      "customer-meta",
      [login, serviceName(customer.service_type), customer.mikrotik_id].filter(Boolean).join(" · "),
    );
    info.append(name);
    if (customer.status !== "active") info.append(el("span", `badge status-${customer.status}`, customer.status));
    if (customer.monitored) {
      const state = customer.monitor_state || "running";
      info.append(el("span", `badge state-${state}`, state === "running" ? "monitored" : state));
    }
    info.append(meta);

    const button = el("button", customer.monitored ? "button danger" : "button primary");
    button.type = "button";
    button.textContent = customer.monitored ? "Stop" : "Start";
    button.setAttribute("aria-label", `${customer.monitored ? "Stop" : "Start"} monitoring ${customer.name}`);
    const message = el("p", "customer-refusal");
    message.setAttribute("role", "alert");
    const refusal = this.refusals.get(customer.id);
    message.textContent = refusal || "";
    message.hidden = !refusal;
    button.addEventListener("click", () => this.act(customer, button, message));
    li.append(info, button, message);
    return li;
  }

  /**
   * @param {Customer} customer
   * @param {HTMLButtonElement} button
   * @param {HTMLElement} message the row's refusal line
   */
  async act(customer, button, message) {
    const starting = !customer.monitored;
    button.disabled = true;
    button.textContent = starting ? "Starting…" : "Stopping…";
    this.refusals.delete(customer.id);
    message.hidden = true;
    try {
      await (starting ? this.actions.start(customer) : this.actions.stop(customer));
    } catch (exc) {
      const words = describeRefusal(/** @type {ApiError} */ (exc), customer);
      this.refusals.set(customer.id, words);
      // The list may have been drawn again meanwhile: say it in the row shown now.
      const shown = this.list.querySelector(`li[data-customer-id="${CSS.escape(customer.id)}"]`);
      const target = shown ? find(shown, ".customer-refusal", HTMLElement) : message;
      target.textContent = words;
      target.hidden = false;
      button.disabled = false;
      button.textContent = starting ? "Start" : "Stop";
      return;
    }
    await this.load();
  }
}

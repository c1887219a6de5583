// The login form: trades API_TOKEN for the session cookie (HttpOnly: the page never
// sees it, and the token itself is never stored, neither in localStorage nor anywhere).

import { api } from "./api.js";
import { find } from "./dom.js";
import { describeRefusal } from "./refusal.js";

/** @typedef {import("./api.js").ApiError} ApiError */

export class Login {
  /**
   * @param {HTMLElement} root
   * @param {() => void} onLoggedIn
   */
  constructor(root, onLoggedIn) {
    this.root = root;
    this.form = find(root, "#login-form", HTMLFormElement);
    this.token = find(root, "#login-token", HTMLInputElement);
    this.error = find(root, "#login-error", HTMLElement);
    this.button = find(this.form, "button[type=submit]", HTMLButtonElement);
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = this.token.value;
      if (!token) return;
      this.button.disabled = true;
      this.error.hidden = true;
      try {
        await api.logIn(token);
      } catch (exc) {
        const error = /** @type {ApiError} */ (exc);
        this.error.textContent =
          error.code === "unauthorized" ? "That token is not the server's API token." : describeRefusal(error);
        this.error.hidden = false;
        this.token.select();
        return;
      } finally {
        this.button.disabled = false;
        this.token.value = ""; // keep it no longer than the request
      }
      onLoggedIn();
    });
  }

  /** @param {string} message */
  show(message) {
    this.root.hidden = false;
    this.error.textContent = message || "";
    this.error.hidden = !message;
    this.token.focus();
  }

  hide() {
    this.root.hidden = true;
  }
}

// The login form: trades API_TOKEN for the session cookie (HttpOnly: the page never
// sees it, and the token itself is never stored, neither in localStorage nor anywhere).

import { api } from "./api.js";
import { describeRefusal } from "./refusal.js";

export class Login {
  constructor(root, onLoggedIn) {
    this.root = root;
    this.form = root.querySelector("#login-form");
    this.token = root.querySelector("#login-token");
    this.error = root.querySelector("#login-error");
    this.button = this.form.querySelector("button[type=submit]");
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = this.token.value;
      if (!token) return;
      this.button.disabled = true;
      this.error.hidden = true;
      try {
        await api.logIn(token);
      } catch (exc) {
        this.error.textContent =
          exc.code === "unauthorized" ? "That token is not the server's API token." : describeRefusal(exc);
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

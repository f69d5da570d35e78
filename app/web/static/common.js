// Shared by every page: calling the JSON API, building elements safely, confirmed
// deletes, and drop zones for file inputs.
"use strict";

const Lineup = (() => {
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

  // A change made from a login session is refused without the session's CSRF token,
  // which the page carries in <meta name="csrf-token"> (absent without a session).
  function withCsrfToken(options) {
    const method = (options.method || "GET").toUpperCase();
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (SAFE_METHODS.has(method) || !meta) return options;
    const headers = new Headers(options.headers || {});
    headers.set("X-CSRF-Token", meta.content);
    return { ...options, headers };
  }

  // Fetch `url`; answer the parsed JSON (or null for 204), or throw an Error whose
  // message is the API's `detail` so pages can show it as it is.
  async function request(url, options = {}) {
    let response;
    try {
      response = await fetch(url, withCsrfToken(options));
    } catch (error) {
      throw new Error(`The service could not be reached (${error.message}).`);
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : `${response.status} ${response.statusText}`;
      const error = new Error(detail);
      error.status = response.status;
      error.code = body && body.code;
      throw error;
    }
    return body;
  }

  // An element with attributes and children; text is always set as text, never as HTML.
  // `style` is an object of CSS properties, set one by one: the Content-Security-Policy
  // refuses a style attribute written as text.
  function el(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name === "style") Object.assign(node.style, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of [].concat(children)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showStatus(node, message, kind = "info") {
    if (!node) return;
    node.textContent = message;
    node.dataset.kind = kind;
  }

  // <button data-delete="/subjects/3" data-confirm="..." data-then="/gallery">: ask, delete, move on.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-delete]");
    if (!button) return;
    if (!window.confirm(button.dataset.confirm || "Delete this?")) return;
    const status = document.querySelector("[data-status]");
    button.disabled = true;
    try {
      await request(button.dataset.delete, { method: "DELETE" });
      if (button.dataset.then) window.location.assign(button.dataset.then);
      else window.location.reload();
    } catch (error) {
      button.disabled = false;
      showStatus(status, error.message, "error");
    }
  });

  // A label.dropzone around a file input: dropped files become the input's files.
  for (const zone of document.querySelectorAll("[data-dropzone]")) {
    const input = zone.querySelector("input[type=file]");
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  return { request, el, showStatus };
})();

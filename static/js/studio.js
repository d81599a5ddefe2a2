// Shared helpers of the pages: API calls with the session cookie + CSRF header, formatting,
// and a WebSocket that reconnects by itself. Plain scripts, no build step.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // fetch() against the REST API; resolves to the parsed JSON, rejects with the API's message.
  function api(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    return fetch(url, options).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var err = new Error((data && (data.message || data.detail)) || res.status + " " + res.statusText);
          err.status = res.status;
          err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  function wsUrl(path, query) {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    return proto + location.host + path + (query ? "?" + query : "");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds === "" || isNaN(seconds)) return "—";
    seconds = Number(seconds);
    if (seconds < 60) return seconds.toFixed(1) + "s";
    var m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + "m " + String(s).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  function money(value) { return "$" + Number(value || 0).toFixed(4); }

  function time(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // Parse "NAME=value" lines (blank lines and # comments skipped) into an object.
  function parseEnv(text) {
    var env = {};
    (text || "").split("\n").forEach(function (line, i) {
      if (!line.trim() || line.trim()[0] === "#") return;
      var at = line.indexOf("=");
      if (at < 1) throw new Error("Environment line " + (i + 1) + ": write NAME=value.");
      env[line.slice(0, at).trim()] = line.slice(at + 1);
    });
    return env;
  }

  // A socket that reconnects with backoff. `url()` is called on every attempt, so the caller
  // can resume from where it is (e.g. ?after=<last seq>). `onState` gets
  // "connecting" | "live" | "reconnecting" | "closed".
  function LiveSocket(opts) {
    this.opts = opts;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.connect();
  }
  LiveSocket.prototype.connect = function () {
    var self = this;
    if (self.stopped) return;
    self.opts.onState(self.attempt ? "reconnecting" : "connecting");
    var ws = new WebSocket(self.opts.url());
    self.ws = ws;
    ws.onopen = function () { self.attempt = 0; self.opts.onState("live"); };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      self.opts.onMessage(msg);
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;  // an older socket we already replaced
      if (self.stopped) { self.opts.onState("closed"); return; }
      if (event.code === 4401 || event.code === 4403) {  // signed out or not ours: retrying won't help
        self.stopped = true;
        self.opts.onState("closed", event.code);
        return;
      }
      self.attempt += 1;
      self.opts.onState("reconnecting");
      var delay = Math.min(5000, 500 * Math.pow(2, self.attempt - 1));
      setTimeout(function () { self.connect(); }, delay);
    };
  };
  // Drop the current connection and reconnect at once (used when a gap is detected).
  LiveSocket.prototype.restart = function () {
    var old = this.ws;
    this.attempt = Math.max(this.attempt, 1);
    this.ws = null;
    if (old) { old.onclose = null; old.close(); }
    this.connect();
  };
  LiveSocket.prototype.stop = function () {
    this.stopped = true;
    if (this.ws) this.ws.close();
  };

  function formatAll(root) {
    (root || document).querySelectorAll("[data-seconds]").forEach(function (el) {
      el.textContent = duration(el.dataset.seconds === "" ? null : el.dataset.seconds);
    });
    (root || document).querySelectorAll("[data-time]").forEach(function (el) {
      if (el.dataset.time) el.textContent = time(el.dataset.time);
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function config() {
    var node = document.getElementById("page-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  window.Studio = { api: api, wsUrl: wsUrl, duration: duration, money: money, time: time, parseEnv: parseEnv,
    LiveSocket: LiveSocket, formatAll: formatAll, el: el, config: config };
  document.addEventListener("DOMContentLoaded", function () { formatAll(document); });
})();

// The agent page: deploy/stop with live progress, prompts, the live sessions table and the
// sandbox panel. Every action goes through the REST API; live state comes from the agent
// socket (ws/agents/<id>/), which sends the current state first and then every event.
(function () {
  "use strict";
  var S = window.Studio, cfg = S.config(), $ = function (id) { return document.getElementById(id); };
  var LIVE_SANDBOX = ["pending", "creating", "ready", "stopping"];
  var LIVE_SESSION = ["queued", "starting", "running"];
  var STEPS = ["Queued", "Creating sandbox", "Writing skills", "Waiting for the runtime", "Ready"];
  var STEP_OF_STATUS = { pending: "Queued", creating: "Creating sandbox", ready: "Ready" };
  var state = { sandbox: null, step: null, sessions: {}, resumeId: cfg.resumeId };

  // ---- deployment --------------------------------------------------------------------
  function applyDeployment(dep, step) {
    state.sandbox = dep;
    var status = dep ? dep.status : null;
    var badge = $("sandbox-status");
    badge.textContent = status || "not deployed";
    badge.className = "badge badge-" + (status || "idle");
    if (dep && dep.backend) $("sandbox-backend").textContent = dep.backend;
    if (step && step !== "Failed") state.step = step;
    else if (!step && STEP_OF_STATUS[status]) state.step = STEP_OF_STATUS[status];
    renderSteps(status);
    var error = $("deploy-error");
    error.hidden = status !== "failed";
    error.textContent = status === "failed" ? (dep.error || "The deployment failed.") : "";
    var live = LIVE_SANDBOX.indexOf(status) >= 0;
    $("deploy-btn").disabled = live;
    $("deploy-btn").textContent = status === "pending" || status === "creating" ? "Deploying…" : "Deploy";
    $("stop-btn").disabled = !live;
    setPanelEnabled(status === "ready");
    renderAgentStatus();
  }

  function renderSteps(status) {
    var list = $("deploy-steps");
    var shown = ["pending", "creating", "ready", "failed"].indexOf(status) >= 0 && state.step;
    list.hidden = !shown;
    if (!shown) return;
    var current = STEPS.indexOf(state.step);
    list.querySelectorAll("li").forEach(function (li, i) {
      li.className = "";
      if (status === "ready" || i < current) li.className = "done";
      else if (i === current) li.className = status === "failed" ? "failed" : "active";
    });
  }

  // Mirrors agents.web.summaries.display_status, which renders the first paint.
  function renderAgentStatus() {
    var running = Object.keys(state.sessions).some(function (id) { return LIVE_SESSION.indexOf(state.sessions[id].status) >= 0; });
    var s = state.sandbox ? state.sandbox.status : null;
    var label = running ? "running" : s === "pending" || s === "creating" ? "deploying" : s === "ready" ? "ready" : s === "failed" ? "failed" : "idle";
    $("agent-status").textContent = label;
    $("agent-status").className = "badge badge-" + label;
  }

  function action(button, path) {
    button.disabled = true;
    S.api("POST", cfg.api + path, {}).then(function (data) {
      applyDeployment(data.deployment, path === "deploy" ? "Queued" : null);
    }).catch(function (err) {
      $("deploy-error").hidden = false;
      $("deploy-error").textContent = err.message;
      button.disabled = false;
    });
  }
  $("deploy-btn").addEventListener("click", function () { state.step = "Queued"; action(this, "deploy"); });
  $("stop-btn").addEventListener("click", function () { action(this, "stop"); });

  // ---- sessions ----------------------------------------------------------------------
  function upsertSession(s) {
    var known = state.sessions[s.id];
    state.sessions[s.id] = s;
    if (s.claude_session_id) enableResume(s);
    var row = document.querySelector('tr[data-session="' + s.id + '"]');
    var fresh = !row;
    if (fresh) {
      row = S.el("tr", { "data-session": s.id });
      $("session-rows").insertBefore(row, $("session-rows").firstChild);
      $("no-sessions").hidden = true;
      if (!known) $("session-count").textContent = Number($("session-count").textContent || 0) + 1;
    }
    var link = S.el("a", { href: cfg.sessionUrl.replace("{id}", s.id), class: "clamp", text: s.prompt.length > 90 ? s.prompt.slice(0, 89) + "…" : s.prompt });
    row.replaceChildren(
      S.el("td", {}, [S.el("span", { class: "badge badge-" + s.status, text: s.status })]),
      S.el("td", {}, s.error ? [link, S.el("div", { class: "session-error small", role: "note", text: s.error })] : [link]),
      S.el("td", { text: S.time(s.started_at) }),
      S.el("td", { class: "num", text: S.duration(s.duration_seconds) }),
      S.el("td", { class: "num", text: String(s.num_turns) }),
      S.el("td", { class: "num mono", text: S.money(s.total_cost_usd) })
    );
    renderAgentStatus();
  }

  function enableResume(s) {
    // The newest session with a conversation wins (sessions arrive newest first at connect).
    var current = state.resumeId && state.sessions[state.resumeId];
    if (current && current.created_at > s.created_at) return;
    state.resumeId = s.id;
    $("prompt-resume").disabled = false;
  }

  // Running sessions' durations tick here; the socket only says when something changes.
  setInterval(function () {
    Object.keys(state.sessions).forEach(function (id) {
      var s = state.sessions[id];
      if (LIVE_SESSION.indexOf(s.status) < 0 || !s.started_at) return;
      var cell = document.querySelector('tr[data-session="' + id + '"] td:nth-child(4)');
      if (cell) cell.textContent = S.duration((Date.now() - new Date(s.started_at)) / 1000);
    });
  }, 1000);

  // ---- live --------------------------------------------------------------------------
  new S.LiveSocket({
    url: function () { return S.wsUrl(cfg.ws); },
    onState: function (st) {
      var note = $("live-note");
      note.className = "muted small live-" + st;
      $("live-text").textContent = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "disconnected" }[st];
    },
    onMessage: function (msg) {
      if (msg.type === "agent") {
        applyDeployment(msg.deployment, null);
        msg.sessions.slice().reverse().forEach(upsertSession);
      } else if (msg.type === "deployment") {
        applyDeployment(msg.deployment, msg.step);
      } else if (msg.type === "session") {
        upsertSession(msg.session);
      }
    },
  });

  // ---- prompt ------------------------------------------------------------------------
  $("prompt-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var error = $("prompt-error"), send = $("prompt-send");
    error.textContent = "";
    var body = { prompt: $("prompt").value };
    try { body.env = S.parseEnv($("prompt-env").value); } catch (e) { error.textContent = e.message; return; }
    if ($("prompt-resume").checked && state.resumeId) body.resume = state.resumeId;
    send.disabled = true;
    S.api("POST", cfg.api + "execute", body).then(function (data) {
      location.href = cfg.sessionUrl.replace("{id}", data.session_id);
    }).catch(function (err) {
      error.textContent = err.message;
      send.disabled = false;
    });
  });
  $("prompt").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("prompt-form").requestSubmit();
  });

  // ---- sandbox panel -----------------------------------------------------------------
  var cwd = "/workspace";
  var panel = $("sandbox-panel");

  function setPanelEnabled(ready) {
    var was = !panel.classList.contains("disabled");
    panel.classList.toggle("disabled", !ready);
    panel.querySelectorAll("button, input, select").forEach(function (c) { c.disabled = !ready; });
    $("sandbox-hint").textContent = ready ? "Files, packages and commands in the live sandbox." : "Deploy the agent to use its sandbox.";
    if (ready && !was) listFiles(cwd);
  }

  function showError(id, err) { $(id).textContent = err ? err.message : ""; }

  function listFiles(path) {
    showError("files-error");
    return S.api("GET", cfg.api + "sandbox/files?path=" + encodeURIComponent(path)).then(function (data) {
      if (data.type !== "directory") return;
      cwd = data.path;
      renderCrumbs();
      var rows = [];
      if (cwd !== "/workspace") rows.push(fileRow({ name: "..", is_dir: true, path: cwd.replace(/\/[^/]+$/, "") }));
      data.entries.sort(function (a, b) { return (b.is_dir - a.is_dir) || a.name.localeCompare(b.name); })
        .forEach(function (e) { rows.push(fileRow(e)); });
      if (!rows.length) rows.push(S.el("tr", {}, [S.el("td", { class: "muted", text: "Empty folder" })]));
      $("files-rows").replaceChildren.apply($("files-rows"), rows);
    }).catch(function (err) { showError("files-error", err); });
  }

  function fileRow(e) {
    var link = S.el("a", { href: "#", class: "file-link" + (e.is_dir ? " dir" : ""), text: e.name + (e.is_dir && e.name !== ".." ? "/" : "") });
    link.addEventListener("click", function (event) {
      event.preventDefault();
      if (e.is_dir) listFiles(e.path); else download(e.path);
    });
    return S.el("tr", { "data-path": e.path }, [
      S.el("td", {}, s.error ? [link, S.el("div", { class: "session-error small", role: "note", text: s.error })] : [link]),
      S.el("td", { class: "num muted small", text: e.is_dir ? "" : formatSize(e.size) }),
    ]);
  }

  function formatSize(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KB";
    return (n / 1048576).toFixed(1) + " MB";
  }

  function renderCrumbs() {
    var parts = cwd.split("/").filter(Boolean), nav = $("files-path"), acc = "";
    nav.replaceChildren();
    parts.forEach(function (p, i) {
      acc += "/" + p;
      var target = acc;
      if (i) nav.appendChild(document.createTextNode(" / "));
      if (i === 0) return nav.appendChild(S.el("a", { href: "#", text: "/" + p })).addEventListener("click", function (ev) { ev.preventDefault(); listFiles(target); });
      var a = nav.appendChild(S.el("a", { href: "#", text: p }));
      a.addEventListener("click", function (ev) { ev.preventDefault(); listFiles(target); });
    });
  }

  function download(path) {
    S.api("GET", cfg.api + "sandbox/files?path=" + encodeURIComponent(path)).then(function (data) {
      var bytes = data.encoding === "base64" ? Uint8Array.from(atob(data.content), function (c) { return c.charCodeAt(0); }) : data.content;
      var url = URL.createObjectURL(new Blob([bytes]));
      var a = S.el("a", { href: url, download: path.split("/").pop() });
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    }).catch(function (err) { showError("files-error", err); });
  }

  function readBase64(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(String(reader.result).split(",")[1] || ""); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsDataURL(file);
    });
  }

  function upload(fileList) {
    var files = Array.prototype.slice.call(fileList || []);
    if (!files.length) return;
    showError("files-error");
    $("dropzone").classList.add("busy");
    Promise.all(files.map(function (f) {
      return readBase64(f).then(function (content) { return { path: cwd + "/" + f.name, content: content, encoding: "base64" }; });
    })).then(function (items) {
      return S.api("POST", cfg.api + "sandbox/files", { files: items });
    }).then(function () { return listFiles(cwd); })
      .catch(function (err) { showError("files-error", err); })
      .finally(function () { $("dropzone").classList.remove("busy"); $("file-input").value = ""; });
  }

  $("file-input").addEventListener("change", function () { upload(this.files); });
  $("files-refresh").addEventListener("click", function () { listFiles(cwd); });
  var zone = $("dropzone");
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); if (!panel.classList.contains("disabled")) zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) { zone.addEventListener(t, function () { zone.classList.remove("over"); }); });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (!panel.classList.contains("disabled")) upload(e.dataTransfer.files);
  });

  function showOutput(title, promise) {
    $("output-title").textContent = title;
    $("output-exit").hidden = true;
    $("output").replaceChildren(S.el("span", { class: "muted", text: "running…" }));
    return promise.then(function (r) {
      var out = [S.el("span", { text: r.stdout })];
      if (r.stderr) out.push(S.el("span", { class: "stderr", text: r.stderr }));
      if (!r.stdout && !r.stderr) out.push(S.el("span", { class: "muted", text: "(no output)" }));
      $("output").replaceChildren.apply($("output"), out);
      var exit = $("output-exit");
      exit.hidden = false;
      exit.textContent = r.timed_out ? "timed out" : "exit " + r.exit_code;
      exit.className = "badge " + (r.exit_code === 0 ? "badge-completed" : "badge-failed");
      listFiles(cwd);
    }).catch(function (err) {
      $("output").replaceChildren(S.el("span", { class: "stderr", text: err.message }));
    });
  }

  $("exec-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var command = $("exec-command").value;
    if (!command.trim()) return;
    showOutput("$ " + command, S.api("POST", cfg.api + "sandbox/exec", { command: command }));
  });
  $("packages-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var names = $("pkg-names").value.trim().split(/\s+/).filter(Boolean);
    if (!names.length) return;
    var manager = $("pkg-manager").value;
    showOutput(manager + " install " + names.join(" "), S.api("POST", cfg.api + "sandbox/packages", { packages: names, manager: manager }));
  });

  setPanelEnabled(false);
  window.studioAgent = state;  // for the browser test and for debugging from the console
})();

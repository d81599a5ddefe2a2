// The session terminal: the stored tail at once (REST), then live lines over the session
// socket from the last seq rendered. Lines are written strictly in seq order: anything at or
// below the last seq is a duplicate and dropped; a jump ahead is a gap, so the socket is
// restarted from the last seq and the server replays what is missing.
(function () {
  "use strict";
  var S = window.Studio, cfg = S.config(), $ = function (id) { return document.getElementById(id); };
  var FINAL = ["completed", "failed", "cancelled"];
  var safe = window.StudioTermSafe;  // the one rule for what sandbox text may do to xterm
  var GAP_RETRIES = 3;  // after this many replays still missing a seq, accept the gap

  var term = new Terminal({
    convertEol: true, disableStdin: true, cursorBlink: false, cursorStyle: "bar", scrollback: 200000,
    fontFamily: 'ui-monospace, "JetBrains Mono", "SFMono-Regular", Menlo, Consolas, monospace', fontSize: 13, lineHeight: 1.25,
    theme: { background: "#0d1117", foreground: "#d6deeb", cursor: "#0d1117", selectionBackground: "#264f78",
      black: "#1b2130", red: "#ff6b6b", green: "#4ade80", yellow: "#facc15", blue: "#60a5fa", magenta: "#c084fc",
      cyan: "#22d3ee", white: "#e5e7eb", brightBlack: "#6b7280" },
  });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($("terminal"));
  fit.fit();
  window.addEventListener("resize", function () { fit.fit(); });

  var state = { start: 0, last: 0, seqs: [], plain: [], session: null, follow: true, states: [], gapAt: null, gapTries: 0, socket: null, term: term };
  window.studioTerminal = state;  // for the browser test and for debugging from the console

  // ---- lines -------------------------------------------------------------------------
  function write(lines) {
    var chunk = "";
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (line.seq <= state.last) continue;  // already shown
      if (line.seq !== state.last + 1 && !acceptGap(line.seq)) break;
      state.last = line.seq;
      state.seqs.push(line.seq);
      state.plain.push(safe.plain(line.text));
      chunk += safe.sanitize(line.text) + "\n";
      if (line.kind === "result") showResult(line);
    }
    if (chunk) term.write(chunk, function () { if (state.follow) term.scrollToBottom(); });
    $("line-count").textContent = state.seqs.length.toLocaleString() + " lines";
    return i === lines.length;
  }

  function acceptGap(seq) {
    if (state.restartPending) return false;  // a replay from state.last is already coming
    if (state.gapAt !== state.last) { state.gapAt = state.last; state.gapTries = 0; }
    state.gapTries += 1;
    if (state.gapTries <= GAP_RETRIES) {
      state.restartPending = true;
      setTimeout(function () {
        state.restartPending = false;
        if (state.socket) state.socket.restart();
      }, 300 * state.gapTries);
      return false;
    }
    term.write("\x1b[2m… lines " + (state.last + 1) + "–" + (seq - 1) + " are missing …\x1b[0m\n");
    return true;
  }

  function showResult(line) {
    var data = line.data || {};
    var box = $("result");
    box.hidden = false;
    box.className = "result-card result-" + (data.status || "completed");
    $("result-head").textContent = safe.plain(line.text);
    $("result-body").textContent = data.result || data.error || "";
    $("result-body").hidden = !(data.result || data.error);
  }

  // ---- header ------------------------------------------------------------------------
  function applySession(s) {
    state.session = s;
    $("s-status").textContent = s.status;
    $("s-status").className = "badge badge-" + s.status;
    $("s-turns").textContent = s.num_turns;
    $("s-cost").textContent = S.money(s.total_cost_usd);
    $("s-duration").textContent = S.duration(s.duration_seconds);
    if (s.started_at) $("s-started").textContent = S.time(s.started_at);
    var err = $("s-error");
    err.hidden = !s.error;
    err.textContent = s.error || "";
    var final = FINAL.indexOf(s.status) >= 0;
    $("cancel-btn").hidden = final;
    if (final && state.conn) setConn(state.conn, true);  // "live" becomes "finished"
    if (final && !state.closeTimer) {
      // Closing lines (e.g. after a cancel) may still be on their way: listen a little longer.
      state.closeTimer = setTimeout(function () { if (state.socket) state.socket.stop(); }, 30000);
    }
  }

  setInterval(function () {
    var s = state.session;
    if (s && FINAL.indexOf(s.status) < 0 && s.started_at) {
      $("s-duration").textContent = S.duration((Date.now() - new Date(s.started_at)) / 1000);
    }
  }, 1000);

  function setConn(st, relabel) {
    if (!relabel) state.states.push(st);
    state.conn = st;
    var final = state.session && FINAL.indexOf(state.session.status) >= 0;
    var label = { connecting: "connecting…", live: final ? "finished" : "live", reconnecting: "reconnecting…", closed: final ? "finished" : "disconnected" }[st];
    $("conn").className = "conn conn-" + (final && (st === "closed" || st === "live") ? "done" : st);
    $("conn-text").textContent = label;
  }

  // ---- follow, copy, download, cancel ------------------------------------------------
  function setFollow(on) {
    state.follow = on;
    $("follow-btn").setAttribute("aria-pressed", String(on));
    $("follow-btn").textContent = on ? "Following" : "Paused — follow";
    if (on) term.scrollToBottom();
  }
  $("follow-btn").addEventListener("click", function () { setFollow(!state.follow); });
  $("terminal").addEventListener("wheel", function () {
    setTimeout(function () {
      var buf = term.buffer.active;
      setFollow(buf.viewportY >= buf.baseY);
    }, 0);
  }, { passive: true });

  $("copy-btn").addEventListener("click", function () {
    var text = state.plain.join("\n") + "\n", btn = this;
    var done = function () { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done);
    else {
      var area = S.el("textarea", {}); area.value = text; document.body.appendChild(area);
      area.select(); document.execCommand("copy"); area.remove(); done();
    }
  });

  $("download-btn").addEventListener("click", function () {
    // The whole log, not just the loaded tail: page through the API.
    var out = [], btn = this;
    btn.disabled = true;
    (function page(after) {
      return S.api("GET", cfg.api + "logs?limit=5000&after=" + after).then(function (data) {
        data.lines.forEach(function (l) { out.push(safe.plain(l.text)); });
        if (data.lines.length) return page(data.next_after);
      });
    })(0).then(function () {
      var url = URL.createObjectURL(new Blob([out.join("\n") + "\n"], { type: "text/plain" }));
      var a = S.el("a", { href: url, download: "session-" + cfg.sessionId + ".log" });
      document.body.appendChild(a); a.click(); a.remove();
    }).finally(function () { btn.disabled = false; });
  });

  $("cancel-btn").addEventListener("click", function () {
    var btn = this;
    btn.disabled = true;
    S.api("POST", cfg.api + "cancel", {}).then(applySession).catch(function (err) {
      $("s-error").hidden = false; $("s-error").textContent = err.message;
    }).finally(function () { btn.disabled = false; });
  });

  // ---- start: the tail, then live -----------------------------------------------------
  state.start = state.last = Math.max(0, cfg.lastSeq - cfg.tail);
  if (state.start > 0) {
    $("tail-note").hidden = false;
    $("tail-note").textContent = "· showing the newest " + cfg.tail.toLocaleString() + " lines (Download has them all)";
  }
  S.api("GET", cfg.api + "logs?limit=" + cfg.tail + "&after=" + state.start).then(function (data) {
    applySession(data.session);
    write(data.lines);
  }).catch(function () { /* the socket replays from the same point */ }).finally(function () {
    state.socket = new S.LiveSocket({
      url: function () { return S.wsUrl(cfg.ws, "after=" + state.last); },
      onState: setConn,
      onMessage: function (msg) {
        if (msg.type === "lines") write(msg.lines);
        else if (msg.type === "session") applySession(msg.session);
      },
    });
  });
})();

// Terminal text comes from inside a sandbox, so it is untrusted: whoever controls the agent's
// output must not be able to clear the screen, move the cursor over earlier lines, set the
// window title or plant a link that shows one address and opens another. This is the one place
// that decides what reaches xterm, for replayed and live lines alike (terminal.js calls it for
// every line it writes, and for the copy and download text).
//
// The rule: colour and style (SGR, ESC [ <digits ; :> m) pass; every other escape sequence is
// removed whole, string sequences (OSC, DCS, SOS, PM, APC) with their payload; 8-bit C1 controls
// are read as their ESC forms first so they meet the same rule; \r\n and a bare \r become \n
// (a bare \r would return to the start of the line and overwrite it); \t and \n pass; every
// other C0 control and DEL is shown inert as its Unicode control picture (␈, ␇, ␛ ...).
// The output ends with an SGR reset, so no style leaks into the next line.
(function (root) {
  "use strict";
  var ESC = 0x1b;
  var SGR = /^\x1b\[[0-9;:]*m$/;
  var RESET = "\x1b[0m";
  var STRING_INTRODUCERS = "]PX^_"; // OSC, DCS, SOS, PM, APC

  function inRange(code, lo, hi) { return code >= lo && code <= hi; }

  // Length of the escape sequence starting at s[i] (an ESC), as a terminal would consume it.
  function sequenceLength(s, i) {
    var n = s.length, j = i + 1;
    if (j >= n) return 1;
    var next = s.charAt(j);
    if (next === "[") {
      j += 1;
      while (j < n && inRange(s.charCodeAt(j), 0x30, 0x3f)) j++;  // parameters
      while (j < n && inRange(s.charCodeAt(j), 0x20, 0x2f)) j++;  // intermediates
      if (j < n && inRange(s.charCodeAt(j), 0x40, 0x7e)) j++;     // final byte
      return j - i;  // a malformed one is dropped as far as it went
    }
    if (STRING_INTRODUCERS.indexOf(next) >= 0) {
      // Up to BEL or ST (ESC \); an unterminated string ends at the end of its line, so it
      // cannot swallow the rest of a multi-line tool result.
      for (j += 1; j < n; j++) {
        var c = s.charCodeAt(j);
        if (c === 0x07) return j + 1 - i;
        if (c === ESC && s.charAt(j + 1) === "\\") return j + 2 - i;
        if (c === 0x0a) return j - i;
      }
      return n - i;
    }
    while (j < n && inRange(s.charCodeAt(j), 0x20, 0x2f)) j++;  // ESC ( B, ESC # 8 ...
    if (j < n && inRange(s.charCodeAt(j), 0x30, 0x7e)) return j + 1 - i;  // ESC c, ESC 7, ESC M ...
    return 1;  // a lone ESC
  }

  function sanitize(text) {
    var s = String(text == null ? "" : text)
      .replace(/[\x80-\x9f]/g, function (c) { return "\x1b" + String.fromCharCode(c.charCodeAt(0) - 0x40); })
      .replace(/\r\n?/g, "\n");
    var out = "";
    for (var i = 0; i < s.length;) {
      var code = s.charCodeAt(i);
      if (code === ESC) {
        var len = sequenceLength(s, i), seq = s.substr(i, len);
        if (SGR.test(seq)) out += seq;
        else if (len === 1) out += "\u241b";
        i += len;
      } else if ((code < 0x20 && code !== 0x09 && code !== 0x0a) || code === 0x7f) {
        out += String.fromCharCode(code === 0x7f ? 0x2421 : 0x2400 + code);
        i += 1;
      } else {
        out += s.charAt(i);
        i += 1;
      }
    }
    return out + RESET;
  }

  // The same text without any escape sequence: what Copy and Download give.
  function plain(text) {
    return sanitize(text).replace(/\x1b\[[0-9;:]*m/g, "");
  }

  var api = { sanitize: sanitize, plain: plain };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.StudioTermSafe = api;
})(this);

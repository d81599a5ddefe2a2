"""static/js/term_safe.js, the one rule for what sandbox text may do to the terminal, run as
it ships (under Node, the same file the page loads). The browser tests
(test_terminal_safety.py) check the same rule against a real xterm in Chromium."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "static" / "js" / "term_safe.js"
RESET = "\x1b[0m"
ESC = "\x1b"


def run(texts: list[str], fn: str = "sanitize") -> list[str]:
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    script = (
        f"const t = require({json.dumps(str(MODULE))});"
        "let d = ''; process.stdin.on('data', c => d += c).on('end', () =>"
        f" process.stdout.write(JSON.stringify(JSON.parse(d).map(t.{fn}))));"
    )
    out = subprocess.run(
        [node, "-e", script], input=json.dumps(texts), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def safe(text: str) -> str:
    return run([text])[0]


def test_it_keeps_colour_and_style():
    text = "\x1b[1mBash\x1b[0m(ls) \x1b[31mred\x1b[0m \x1b[38;2;10;20;30mrgb\x1b[38:5:196m \x1b[m"
    assert safe(text) == text + RESET


@pytest.mark.parametrize(
    "sequence",
    [
        "\x1b[2J",  # erase the screen
        "\x1b[3J",  # erase the scrollback
        "\x1b[K",  # erase the line
        "\x1b[H",  # cursor home
        "\x1b[5;1H",  # cursor position
        "\x1b[3A",  # cursor up
        "\x1b[2F",  # cursor to a previous line
        "\x1b[1;5r",  # scroll region
        "\x1b[2S",  # scroll up
        "\x1b[?1049h",  # alternate screen
        "\x1b[?25l",  # hide the cursor
        "\x1b[>4;1m",  # a private "m" is not SGR
        "\x1b[4 q",  # cursor style (intermediate byte)
        "\x1bc",  # full reset
        "\x1b7",  # save cursor
        "\x1b8",  # restore cursor
        "\x1bM",  # reverse index (cursor up, scrolling)
        "\x1b(0",  # DEC line-drawing character set
        "\x1b#8",  # fill the screen with E
    ],
)
def test_it_removes_every_other_control_sequence(sequence):
    assert safe(f"before{sequence}after") == "beforeafter" + RESET


@pytest.mark.parametrize(
    "string",
    [
        "\x1b]0;pwned title\x07",  # window title, BEL-terminated
        "\x1b]2;pwned title\x1b\\",  # window title, ST-terminated
        "\x1b]52;c;ZWNobyBwd25lZA==\x07",  # clipboard write
        "\x1bPq#0;2;0;0;0#0~~\x1b\\",  # DCS (sixel)
        "\x1b_payload\x1b\\",  # APC
        "\x1b^payload\x1b\\",  # PM
        "\x1bXpayload\x1b\\",  # SOS
    ],
)
def test_it_removes_string_sequences_with_their_payload(string):
    assert safe(f"a{string}b") == "ab" + RESET


def test_it_leaves_an_osc8_link_as_plain_text_without_its_target():
    text = "see \x1b]8;;https://evil.example/\x1b\\https://docs.example/\x1b]8;;\x1b\\ now"
    assert safe(text) == "see https://docs.example/ now" + RESET


def test_an_unterminated_string_ends_at_its_line_not_at_the_end_of_the_text():
    assert safe("a\x1b]0;title\nsecond line") == "a\nsecond line" + RESET


def test_it_reads_8bit_c1_controls_as_their_escape_forms():
    assert safe("a\x9b2Jb\x9d8;;https://evil.example/\x07c\x9b31md") == "abc\x1b[31md" + RESET


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("real output\rFAKE", "real output\nFAKE"),  # a bare CR cannot overwrite the line
        ("one\r\ntwo", "one\ntwo"),
        ("abc\b\b\bXYZ", "abc\u2408\u2408\u2408XYZ"),  # backspace cannot overwrite either
        ("bell\x07", "bell\u2407"),
        ("shift\x0eout\x0f", "shift\u240eout\u240f"),
        ("vt\x0bff\x0c", "vt\u240bff\u240c"),
        ("del\x7f", "del\u2421"),
        ("lone\x1b", "lone\u241b"),
        ("lone\x1b\x1b[31mred", "lone\u241b\x1b[31mred"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
    ],
)
def test_it_shows_other_controls_inert(text, shown):
    assert safe(text) == shown + RESET


def test_every_line_ends_with_a_reset_so_no_style_leaks_into_the_next():
    assert safe("\x1b[8mconcealed") == "\x1b[8mconcealed" + RESET
    assert safe("") == RESET


def test_plain_has_no_escapes_at_all():
    assert run(["\x1b[31mred\x1b[0m \x1b[2Jx\x1b]8;;u\x07y"], "plain") == ["red xy"]


def test_nothing_but_sgr_survives_random_hostile_input():
    pieces = [ESC, "[", "]", "P", "_", "^", "X", "\\", "\x07", "\x9b", "\x9d", "\x90", "\r"]
    pieces += ["\n", "\b", "\x00", "\x7f", "?", ";", ":", "1", "2", "m", "J", "H", "A", "h"]
    pieces += [" ", "(", "#", "c", "8", "a", "é", "\u202e"]
    rng = random.Random(13)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(3000)]
    sgr = re.compile(r"\x1b\[[0-9;:]*m")
    for text, out in zip(texts, run(texts), strict=True):
        rest = sgr.sub("", out)
        bad = [c for c in rest if (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F]
        assert not bad, (text, out)

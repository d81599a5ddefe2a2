"""Hostile terminal output, in a real browser (headless Chromium) against a live studio.

A sandbox controls the text of its log lines. These tests store lines that try to wipe the
screen, overwrite earlier lines, retitle the window and plant a deceptive hyperlink, both as
replayed history (REST tail) and as live lines (ingest → socket), and read back what xterm
actually holds in its buffer and what a click on the link does.
"""

from __future__ import annotations

import shutil
import time

import pytest
import requests
from django.utils import timezone

from agents.models import Session
from agents.tests.test_browser import CHROMIUM, chromium, terminal_text
from logs.models import LogLine
from sandboxes.models import Sandbox
from studio.testing.servers import free_port, studio_process
from studio.tokens import session_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVIL = "https://evil.example/steal"
SHOWN = "https://docs.example/setup"

# What a hostile sandbox sends, after some real output. Each attack is followed by fake text
# that would stand in for the real output if the attack worked.
REPLAYED = [
    "\x1b[31mREAL-1 red\x1b[0m first real line",
    "REAL-2 second real line",
    "REAL-3 third real line",
    "\x1b[2J\x1b[3J\x1b[HFAKE-CLEAR all good, nothing happened",
    "\x1b[3A\x1b[2KFAKE-UP overwrote line three",
    f"click \x1b]8;;{EVIL}\x1b\\{SHOWN}\x1b]8;;\x1b\\ for the docs",
    "\x1b]0;pwned title\x07REAL-4 after a title change",
]
LIVE = [
    "REAL-5 live line",
    "\x1b[?1049h\x1b[HFAKE-ALT alternate screen",
    "REAL-6 overwritten?\rFAKE-CR",
    "REAL-7 \x1b7\x1b[1;1HFAKE-HOME\x1b8after save/restore",
    "\x9b2J\x9b1;1HFAKE-C1 8-bit clear",
    f"live \x1b]8;;{EVIL}\x07{SHOWN}-live\x1b]8;;\x07 link",
]


@pytest.fixture
def studio():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    port = free_port()
    env = {
        "BACKEND_API_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "true",  # static files from the finders, whatever mode the suite runs in
    }
    with studio_process(env=env, port=port) as (base, _proc):
        yield base


@pytest.fixture
def hostile_session(agent):
    sandbox = Sandbox.objects.create(agent=agent, backend="local", status="ready")
    session = Session.objects.create(
        agent=agent,
        sandbox=sandbox,
        prompt="print something nasty",
        status="running",
        started_at=timezone.now(),
        last_seq=len(REPLAYED),
    )
    LogLine.objects.bulk_create(
        LogLine(session=session, seq=i, kind="stdout", text=text, ts=timezone.now())
        for i, text in enumerate(REPLAYED, start=1)
    )
    return session


def _append_live(base: str, session) -> None:
    lines = [
        {"seq": i, "kind": "stdout", "text": text, "ts": "2026-01-01T00:00:00Z"}
        for i, text in enumerate(LIVE, start=len(REPLAYED) + 1)
    ]
    answer = requests.post(
        f"{base}/api/internal/logs/append",
        json={"session_id": str(session.pk), "lines": lines},
        headers={"Authorization": f"Bearer {session_token(session.pk)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def _rows(page) -> list[str]:
    return [row for row in terminal_text(page).splitlines() if row.strip()]


def _cell_at(page, needle: str) -> dict:
    """Viewport row/column of ``needle`` and the pixel centre of its first cell."""
    return page.evaluate(
        """(needle) => { const t = window.studioTerminal.term, b = t.buffer.active;
        const box = document.querySelector("#terminal .xterm-screen").getBoundingClientRect();
        const w = box.width / t.cols, h = box.height / t.rows;
        for (let y = 0; y < b.length; y++) {
          const x = b.getLine(y).translateToString(true).indexOf(needle);
          if (x >= 0) {
            const row = y - b.viewportY, cell = b.getLine(y).getCell(x);
            return { y, x, row, px: box.left + (x + 2.5) * w, py: box.top + (row + 0.5) * h,
                     fg: cell.getFgColor(), palette: cell.isFgPalette() };
          }
        }
        return null; }""",
        needle,
    )


def _click_link(page, text: str) -> None:
    cell = _cell_at(page, text)
    assert cell is not None and cell["row"] >= 0, f"{text!r} is not in the viewport"
    page.mouse.move(cell["px"] - 20, cell["py"])
    page.mouse.move(cell["px"], cell["py"])  # the link providers run on hover
    time.sleep(0.3)
    page.mouse.click(cell["px"], cell["py"])
    time.sleep(0.5)


def test_hostile_escapes_cannot_clear_overwrite_or_fake_the_terminal(studio, hostile_session, user):
    session = hostile_session
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        dialogs: list[str] = []
        popups: list[str] = []
        errors: list[str] = []

        def on_dialog(dialog):
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        context.on("page", lambda p: popups.append(p.url))

        page.goto(studio + "/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url(studio + "/")
        page.goto(f"{studio}/sessions/{session.pk}/")

        # Replayed history.
        page.wait_for_function(f"() => window.studioTerminal.last >= {len(REPLAYED)}")
        page.wait_for_function("() => window.studioTerminal.term.buffer.active.length > 0")
        time.sleep(0.3)  # xterm writes asynchronously
        rows = _rows(page)
        real = [r for r in rows if "REAL-" in r]
        assert [r.split()[0] for r in real] == ["REAL-1", "REAL-2", "REAL-3", "REAL-4"], rows
        # The fake lines are there as text, below the real ones, never over them.
        assert rows.index(real[2]) < next(i for i, r in enumerate(rows) if "FAKE-CLEAR" in r)
        assert any(r.startswith("FAKE-UP") for r in rows)
        assert "second real line" in rows[1] and "third real line" in rows[2], rows
        # Colour still renders: "REAL-1 red" is drawn in palette red (1).
        red = _cell_at(page, "REAL-1")
        assert red["palette"] and red["fg"] == 1, red
        assert page.title() != "pwned title"

        _click_link(page, SHOWN)
        assert not dialogs and not popups, (dialogs, popups)
        assert page.url == f"{studio}/sessions/{session.pk}/"

        # Live lines, through the ingest and the session socket.
        _append_live(studio, session)
        page.wait_for_function(f"() => window.studioTerminal.last >= {len(REPLAYED) + len(LIVE)}")
        time.sleep(0.3)
        rows = _rows(page)
        real = [r.split()[0] for r in rows if r.startswith("REAL-")]
        assert real == ["REAL-1", "REAL-2", "REAL-3", "REAL-4", "REAL-5", "REAL-6", "REAL-7"], rows
        assert "REAL-6 overwritten?" in rows and "FAKE-CR" in rows, rows
        assert page.evaluate("window.studioTerminal.term.buffer.active.type") == "normal"
        assert rows[0].startswith("REAL-1"), rows  # nothing was drawn over the first line
        _click_link(page, SHOWN + "-live")
        assert not dialogs and not popups, (dialogs, popups)

        # Copy and Download get the same text without escapes.
        plain = page.evaluate("window.studioTerminal.plain")
        assert not any("\x1b" in p or "\x9b" in p for p in plain), plain
        assert not errors, errors
        context.close()

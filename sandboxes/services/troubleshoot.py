"""The seed guide's troubleshooting list, as messages that name the cause and the fix.

Each message lands where a user looks: a failed deployment's `error` (the API answer, the agent
page's sandbox card, and the closing line of every run that waited for it), or a run's
`error` and log lines. One function per entry of the guide:

- "No template found"              -> template_missing
- "Timeout waiting for port 8080"  -> runtime_never_answered
- "Agent not writing output"       -> no_output
- "Browser automation not working" -> browser_notices (checked before a run starts)

The probes run inside the sandbox through the backend's `exec`, so they see exactly what the
agent's tools would see (the local jail's PATH and /usr, the E2B template's image).
"""

from __future__ import annotations

import logging
import re
import shlex

from django.conf import settings

from sandboxes.backends import get_backend
from sandboxes.backends.base import BackendError

log = logging.getLogger(__name__)

BUILD = "`python manage.py build_template`"
START_CMD = "python -m agent_runtime serve --port 8080 --workspace /workspace"
PROBE_TIMEOUT = 20


# --- No template found ------------------------------------------------------------------


def template_missing(*, template: str, from_agent: bool) -> str:
    source = "this agent's `template` field" if from_agent else "E2B_TEMPLATE_ID"
    fix = (
        "clear the agent's template field to use E2B_TEMPLATE_ID, or set it to a template "
        "you have built"
        if from_agent
        else "set E2B_TEMPLATE_ID to the name it prints (the default is agent-studio-runtime)"
    )
    return (
        f"No template found: E2B has no template {template!r} (named by {source}). Build it "
        f"from agent_runtime/ with {BUILD} (needs E2B_API_KEY), then {fix}, and deploy again."
    )


def template_not_configured() -> str:
    return (
        "No template found: E2B_TEMPLATE_ID is empty. Build the template with "
        f"{BUILD} and set E2B_TEMPLATE_ID to the name it prints, then deploy again."
    )


# --- Timeout waiting for port 8080 ------------------------------------------------------

_MODULE = re.compile(r"No module named '?([\w.]+)'?")
_NOT_FOUND = re.compile(r"execvp [^:]*: No such file or directory|command not found")


def runtime_never_answered(*, sandbox, waited: float | None, exited: bool = False) -> str:
    """Why the runtime never answered /health, what to look at, and what to change.

    The runtime's own output goes to the studio's log (it may name host paths); the user
    message names the likely cause read from it (a missing module or program)."""
    tail = _runtime_log(sandbox)
    if tail:
        log.warning("runtime log of sandbox=%s (last lines):\n%s", sandbox.pk, tail)
    what = (
        "the runtime exited before it listened"
        if exited
        else f"the runtime never answered in {waited:g} s"
    )
    hint = _log_hint(tail)
    if sandbox.backend == "e2b":
        start = (
            f"Look at the template's start command: {sandbox.template!r} must start "
            f"`{START_CMD}` (agent_runtime/e2b_template.py, with RUNTIME_TOKEN_FILE set) and "
            "wait for port 8080; rebuild it with "
            f"{BUILD} after a change. The runtime's log is "
            "/home/user/.agent_runtime/runtime.log in the sandbox"
        )
    else:
        start = (
            f"Look at the local start command: the studio's Python runs `{START_CMD}` in the "
            "jail (the Python and the agent_runtime package must be readable there). The "
            "runtime's log is runtime.log in the sandbox's directory under STUDIO_DATA_DIR"
        )
    logged = "; its last lines are in the studio's log" if tail else ""
    slow = (
        "" if exited else " On a busy machine, give it longer with SANDBOX_READY_TIMEOUT_SECONDS."
    )
    return f"Timeout waiting for port 8080: {what}{hint}. {start}{logged}.{slow}"


def _runtime_log(sandbox) -> str:
    if not sandbox.external_id:
        return ""
    try:
        return get_backend(sandbox.backend).runtime_log(sandbox.external_id)
    except BackendError:
        return ""


def _log_hint(tail: str) -> str:
    module = _MODULE.findall(tail)
    if module:
        return f" (its log says: No module named {module[-1]!r})"
    if _NOT_FOUND.search(tail):
        return " (its log says its program was not found)"
    return ""


# --- Agent not writing output -----------------------------------------------------------

# Run inside the sandbox: can it reach the address it was given? (Python is in every
# sandbox: the runtime needs it.)
_REACH = """
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
    print("reachable")
except urllib.error.HTTPError as e:
    print("reachable")
except Exception as e:
    print("unreachable:", getattr(e, "reason", None) or e)
"""


def no_output(*, session, ingest_url: str) -> str:
    """A started run from which no line arrived: name the address the sandbox was given and
    say whether it can reach it, from inside the sandbox."""
    sandbox = session.sandbox
    given = f"BACKEND_API_URL={settings.BACKEND_API_URL} (the sandbox posts to {ingest_url})"
    reach = _reachability(sandbox, settings.BACKEND_API_URL.rstrip("/") + "/healthz")
    if reach.startswith("unreachable"):
        cause = f"the sandbox cannot reach the studio at {given}: {reach.partition(':')[2].strip()}"
    elif reach == "reachable":
        cause = (
            f"the sandbox reaches the studio at {given}, but nothing arrived: see the "
            "runtime's run log (runner.log in the run's directory under ~/.agent_runtime)"
        )
    else:
        cause = f"the sandbox probably cannot reach the studio at {given}"
    return (
        f"Agent not writing output: no output arrived within a minute although the runtime "
        f"accepted the run; {cause}. Set BACKEND_API_URL to an address the sandbox can "
        "reach (E2B sandboxes need a public https URL; local ones the address the studio "
        "listens on, which runstudio sets by itself), restart the studio and run again."
    )


def _reachability(sandbox, url: str) -> str:
    command = f"python3 -c {shlex.quote(_REACH)} {shlex.quote(url)}"
    try:
        result = get_backend(sandbox.backend).exec(
            sandbox.external_id, command, timeout=PROBE_TIMEOUT
        )
    except BackendError:
        return ""
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


# --- Browser automation not working ------------------------------------------------------

_BROWSER = re.compile(r"playwright|chromium", re.I)
_NODE = re.compile(r"require\(\s*['\"]playwright|npx playwright|from ['\"]playwright['\"]")
_PYTHON = re.compile(r"playwright\.(sync|async)_api|python3? -m playwright|pip install playwright")

# Prints one of: node, npm, playwright, chromium <path>, ok.
_NODE_PROBE = r"""
command -v node >/dev/null || { echo node; exit 0; }
command -v npm >/dev/null || { echo npm; exit 0; }
node -e '
let pw;
try { pw = require("playwright"); } catch (e) { console.log("playwright"); process.exit(0); }
const exe = pw.chromium.executablePath();
console.log(require("fs").existsSync(exe) ? "ok" : "chromium " + exe);
'
"""
# Prints one of: python-playwright, chromium <path>, ok.
_PYTHON_PROBE = r"""
python3 - <<'EOF'
import os
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("python-playwright")
    raise SystemExit(0)
with sync_playwright() as p:
    exe = p.chromium.executable_path
print("ok" if os.path.exists(exe) else "chromium " + exe)
EOF
"""


def browser_flavours(agent) -> list[str]:
    """Which Playwright the agent's skills use: "node" (the seed guide's), "python", both,
    or none."""
    found = []
    for skill in agent.skills.all():
        text = f"{skill.description}\n{skill.body}"
        if not _BROWSER.search(text):
            continue
        node, python = bool(_NODE.search(text)), bool(_PYTHON.search(text))
        if node or not python:
            found.append("node")
        if python:
            found.append("python")
    return sorted(set(found))


def browser_notices(*, agent, sandbox) -> list[str]:
    """For an agent whose skills drive a browser: what the sandbox lacks and how to add it
    (empty when everything is there, or the agent uses no browser)."""
    notices = []
    for flavour in browser_flavours(agent):
        probe = _NODE_PROBE if flavour == "node" else _PYTHON_PROBE
        try:
            result = get_backend(sandbox.backend).exec(
                sandbox.external_id, probe, timeout=PROBE_TIMEOUT
            )
        except BackendError as exc:
            log.warning("browser probe failed sandbox=%s error=%s", sandbox.pk, exc.message)
            continue
        lines = result.stdout.strip().splitlines()
        missing = lines[-1] if lines else ""
        if missing and missing != "ok":
            notices.append(_browser_message(missing, sandbox=sandbox, agent=agent))
    return notices


def _browser_message(missing: str, *, sandbox, agent) -> str:
    e2b = sandbox.backend == "e2b"
    rebuild = f"; or rebuild the template from agent_runtime/ with {BUILD}, which has it"
    packages = f"POST /api/agents/{agent.pk}/sandbox/packages"
    what, fix = {
        "node": (
            "Node.js (`node`) is not installed in the sandbox",
            f"rebuild the template from agent_runtime/ with {BUILD} (it installs Node.js LTS)"
            if e2b
            else "install Node.js and npm on the studio's host (Debian/Ubuntu: `apt-get "
            "install nodejs npm`; local sandboxes use the host's /usr)",
        ),
        "npm": (
            "npm is not installed in the sandbox",
            f"rebuild the template with {BUILD}"
            if e2b
            else "install npm on the studio's host (`apt-get install npm`)",
        ),
        "playwright": (
            "the Node package `playwright` is not installed (`require('playwright')` fails)",
            f'install it into the workspace: {packages} {{"packages": ["playwright"]}} (or '
            "`npm install playwright` in /workspace)" + (rebuild if e2b else ""),
        ),
        "python-playwright": (
            "the Python package `playwright` is not installed",
            f'{packages} {{"packages": ["playwright"], "manager": "pip"}}'
            + (rebuild if e2b else ""),
        ),
    }.get(missing, (None, None))
    if what is None:  # "chromium <path>"
        path = missing.partition(" ")[2]
        what = f"Playwright's Chromium is not installed (no {path})"
        fix = (
            "run `npx playwright install chromium` in the sandbox (it downloads Chromium; "
            "needs network access to Playwright's download host)"
            + (
                rebuild
                if e2b
                else "; or install it once on the host for every local sandbox, as the "
                "README's 'Browser automation in local sandboxes' says"
            )
        )
    return f"Browser automation not working: {what}. Fix: {fix}."

"""Scripts for the scripted model that several test suites play."""

from __future__ import annotations

# Not `sleep 30`: the Claude CLI refuses a leading sleep of 25 s or more in its Bash tool
# (it wants such waits run in the background), which would end the "slow" run at once.
SLOW_COMMAND = "python3 -c 'import time; time.sleep(60)'; echo late"


def slow_script(marker: str = "[[slow]]") -> dict:
    """A run that sits in one Bash tool call for a minute: long enough to act on mid-run."""
    return {
        "marker": marker,
        "turns": [
            [{"type": "tool_use", "name": "Bash", "input": {"command": SLOW_COMMAND}}],
            [{"type": "text", "text": "done"}],
        ],
    }

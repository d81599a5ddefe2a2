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


def ticking_script(steps: int, pause: float, marker: str = "[[ticks]]") -> dict:
    """A run of several seconds: `steps` turns, each a Bash command that prints `tick-<i>`
    and sleeps `pause` seconds, then a closing text."""
    turns = [
        [
            {"type": "text", "text": f"Step {i}."},
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": f"echo tick-{i}; sleep {pause}"},
            },
        ]
        for i in range(1, steps + 1)
    ]
    return {"marker": marker, "turns": [*turns, [{"type": "text", "text": "All ticks done."}]]}

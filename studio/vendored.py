"""The front-end files the pages load from static/vendor, and the check that they are there.

`make setup` (`npm ci` + scripts/vendor_static.py) copies them from node_modules. Without them
the pages still render but the terminal's script is a 404 and never connects, silently; so
both servers (`runstudio`, `serve`) refuse to start instead.
"""

from __future__ import annotations

# What templates/ load with {% static %} (studio/tests/test_vendored.py keeps them in step).
VENDORED = (
    "vendor/xterm/xterm.js",
    "vendor/xterm/xterm.css",
    "vendor/xterm/addon-fit.js",
    "vendor/htmx/htmx.min.js",
)


def missing_vendored() -> list[str]:
    """The vendored files no static finder can find (static/vendor is in STATICFILES_DIRS)."""
    from django.contrib.staticfiles import finders

    return [path for path in VENDORED if not finders.find(path)]


def vendored_problem() -> str:
    """A sentence saying what is missing and what to run, or "" when all is there."""
    missing = missing_vendored()
    if not missing:
        return ""
    return (
        f"The pages' front-end files are missing from static/ ({', '.join(missing)}): the "
        "session terminal would never connect. Run `make setup` (or `npm ci && python "
        "scripts/vendor_static.py`), then start the studio again."
    )

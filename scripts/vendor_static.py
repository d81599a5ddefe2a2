"""Copy the front-end files the pages use from node_modules into static/vendor.

`make static` runs `npm ci` (versions pinned in package-lock.json) and then this script, so
the pages serve libraries from the npm registry as our own static files: no CDN at runtime.
Only the listed dist files are copied, not whole packages.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "node_modules"
VENDOR = ROOT / "static" / "vendor"

# node_modules path -> static/vendor path
FILES = {
    "@xterm/xterm/lib/xterm.js": "xterm/xterm.js",
    "@xterm/xterm/css/xterm.css": "xterm/xterm.css",
    "@xterm/xterm/LICENSE": "xterm/LICENSE",
    "@xterm/addon-fit/lib/addon-fit.js": "xterm/addon-fit.js",
    # The scripts name their source maps; the manifest storage insists they exist.
    "@xterm/xterm/lib/xterm.js.map": "xterm/xterm.js.map",
    "@xterm/addon-fit/lib/addon-fit.js.map": "xterm/addon-fit.js.map",
    "htmx.org/dist/htmx.min.js": "htmx/htmx.min.js",
    "htmx.org/LICENSE": "htmx/LICENSE",
}


def main() -> int:
    missing = [src for src in FILES if not (MODULES / src).is_file()]
    if missing:
        sys.stderr.write(f"vendor_static: missing {', '.join(missing)}; run `npm ci` first.\n")
        return 1
    if VENDOR.exists():
        shutil.rmtree(VENDOR)  # nothing stale from an older version survives
    for src, dest in FILES.items():
        target = VENDOR / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MODULES / src, target)
    print(f"vendor_static: {len(FILES)} files into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

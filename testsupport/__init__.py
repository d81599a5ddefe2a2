"""Test support: harnesses and doubles that tests, fault suites and benchmarks share.

Nothing under `agents/`, `sandboxes/`, `logs/`, `studio/` or `agent_runtime/` imports this
package (a test enforces it), and the studio's image does not need it: it may depend on the
development requirements (uvicorn, bubblewrap on the host) that production never installs.
"""

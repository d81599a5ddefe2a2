"""Ways out of /workspace, and requests too big to serve, through the sandbox routes.

sandboxes/tests already prove `..`, `/etc/passwd` and one symlink to /etc/passwd on read, bad
pip names, the exec timeout bound and stdout truncation; logs/tests prove the ingest limits.
Here: symlinks the sandbox plants (to a file, to /, to a directory, chains, loops, dangling)
on read AND write (writes aim at a host directory, so a broken rule would show on the host),
NUL bytes, very long paths, `//etc`, unicode look-alikes, FIFOs, oversized files; exec `cwd`;
npm and pip names with shell or option syntax; a command that leaves a child holding its
output open; oversized prompts, files, file counts and bodies.
"""

from __future__ import annotations

import base64
import time

import pytest

from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import deploy_ready
from tests.abuse.conftest import assert_error_body, assert_unchanged, snapshot

PASSWD = "root:x:0:0"


@pytest.fixture
def local(settings):
    settings.SANDBOX_BACKEND = "local"
    return "local"


@pytest.fixture
def host_dir(tmp_path):
    """A directory on the host (not in any sandbox) that links will point at."""
    (tmp_path / "victim.txt").write_text("host file, untouched")
    return tmp_path


def _sh(api, agent_id, command: str, **extra) -> dict:
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec", {"command": command, **extra}, format="json"
    )
    assert res.status_code == 200, res.content
    return res.json()


@pytest.mark.django_db(transaction=True)
def test_no_path_leads_out_of_the_workspace(live_studio, api, local, host_dir):
    agent_id = create_agent(api, skills=[])
    deploy_ready(api, agent_id)
    files = f"/api/agents/{agent_id}/sandbox/files"
    setup = _sh(
        api,
        agent_id,
        " && ".join(
            [
                "mkdir -p inner && echo inside > inner/f.txt",
                "ln -s /etc/passwd pw",
                "ln -s / root",
                "ln -s /etc etcdir",
                "ln -s pw chain1 && ln -s chain1 chain2 && ln -s chain2 chain3",
                "ln -s ../../../../../etc/passwd rel",
                "ln -s /proc/self/root procroot",
                "ln -s /tmp tmpdir",
                "ln -s loop1 loop2 && ln -s loop2 loop1",
                "ln -s /workspace/inner ok && ln -s ok/f.txt okfile",
                f"ln -s {host_dir} hostdir",
                f"ln -s {host_dir}/victim.txt hostfile",
                f"ln -s {host_dir}/new.txt dangling",
                "ln -s hostdir hostchain",
                "mkdir -p deep && ln -s ../../.. deep/up",
                "mkfifo fifo",
                "truncate -s 11M big",
            ]
        ),
    )
    assert setup["exit_code"] == 0, setup

    # Links that stay inside are followed (the control: the rule is not "refuse all links").
    assert api.get(files, {"path": "okfile"}).json()["content"] == "inside\n"
    assert api.get(files, {"path": "ok/f.txt"}).json()["content"] == "inside\n"

    outside = [
        "pw", "root", "root/etc/passwd", "etcdir", "etcdir/passwd", "chain3", "rel",
        "procroot/etc/passwd", "tmpdir", "hostdir", "hostdir/victim.txt", "hostfile",
        "hostchain/victim.txt", "deep/up/etc/passwd", "..", "../", "/", "//etc/passwd",
        "///etc/passwd", "/workspace/../etc/passwd", "/workspace/./../etc", "/workspace/..",
        "inner/../../etc/passwd", "/ｅｔｃ/passwd", "a\x00b", "\x00", "/workspace/x\x00/../../etc",
        "x" * 5000, "a/" * 600, "   ",
    ]  # fmt: skip
    for path in outside:
        res = api.get(files, {"path": path})
        assert_error_body(res, 400, ("read", path))
        assert PASSWD not in res.content.decode()
        assert "host file" not in res.content.decode()

    # Look-alikes are names inside /workspace, never a way up: at most "not found".
    lookalikes = ["．．/．．/etc/passwd", "\u2024\u2024/etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                  "..\\..\\etc\\passwd", "..%00/etc/passwd", "\u202e/etc/passwd"]  # fmt: skip
    for path in lookalikes:
        res = api.get(files, {"path": path})
        assert res.status_code in (400, 404), (path, res.status_code)
        assert_error_body(res, res.status_code, ("read", path))
        assert PASSWD not in res.content.decode()

    # Paths inside that cannot be used so (a loop, a FIFO, a directory as a file, a file as
    # a directory, a file past the read limit) are the caller's mistake: 400, not a 5xx,
    # and a FIFO must not tie up the request.
    started = time.monotonic()
    for path in ("loop1", "loop1/x", "fifo", "big"):
        assert_error_body(api.get(files, {"path": path}), 400, ("read", path))
    assert time.monotonic() - started < 10
    for path in ("loop1", "loop1/x", "fifo", "inner", "ok"):
        res = api.post(files, {"files": [{"path": path, "content": "x"}]}, format="json")
        assert_error_body(res, 400, ("write", path))
    for cwd in ("loop1", "fifo", "okfile", "inner/f.txt"):
        res = api.post(
            f"/api/agents/{agent_id}/sandbox/exec", {"command": "pwd", "cwd": cwd}, format="json"
        )
        assert_error_body(res, 400, ("cwd", cwd))

    # Writes: through every kind of link out, and every malformed path. None lands anywhere.
    for path in [*outside, "", "hostdir/pwned.txt", "hostchain/pwned.txt", "dangling", "tmpdir/x",
                 "root/tmp/pwned.txt", "deep/up/tmp/pwned.txt"]:  # fmt: skip
        res = api.post(files, {"files": [{"path": path, "content": "pwned"}]}, format="json")
        assert res.status_code == 400, ("write", path, res.status_code, res.content[:200])
        assert_error_body(res, 400, ("write", path))
    assert sorted(p.name for p in host_dir.iterdir()) == ["victim.txt"]
    assert (host_dir / "victim.txt").read_text() == "host file, untouched"
    # A batch with one bad path writes none of its files.
    res = api.post(
        files,
        {"files": [{"path": "fine.txt", "content": "x"}, {"path": "../x", "content": "x"}]},
        format="json",
    )
    assert_error_body(res, 400, "mixed batch")
    assert api.get(files, {"path": "fine.txt"}).status_code == 404

    # exec's cwd obeys the same rule, links included.
    for cwd in ["/etc", "..", "/", "//etc", "/workspace/..", "etcdir", "root", "hostdir",
                "chain3", "tmpdir", "deep/up", "x\x00", "a/" * 600]:  # fmt: skip
        res = api.post(
            f"/api/agents/{agent_id}/sandbox/exec", {"command": "pwd", "cwd": cwd}, format="json"
        )
        assert_error_body(res, 400, ("cwd", cwd))
    assert _sh(api, agent_id, "pwd", cwd="ok")["stdout"].strip().startswith("/workspace/")
    api.post(f"/api/agents/{agent_id}/stop")


@pytest.mark.django_db(transaction=True)
def test_exec_limits_hold_against_a_child_that_keeps_the_output_open(live_studio, api, local):
    agent_id = create_agent(api, skills=[])
    deploy_ready(api, agent_id)
    started = time.monotonic()
    res = _sh(api, agent_id, "sleep 60 & echo started", timeout=1500)
    assert time.monotonic() - started < 10, "the exec outlived its timeout"
    assert "started" in res["stdout"]
    # stderr is capped like stdout.
    big = _sh(api, agent_id, "head -c 600000 /dev/zero | tr '\\\\0' y >&2")
    assert "[output truncated" in big["stderr"] and len(big["stderr"]) < 300_000
    # The sandbox still works, and no child of the earlier command is left.
    assert "sleep 60" not in _sh(api, agent_id, "ps -eo args")["stdout"]
    api.post(f"/api/agents/{agent_id}/stop")


# --- refused before any sandbox is involved ----------------------------------------------

BAD_PIP = [
    "six;id", "six|id", "six`id`", "six$(id)", "six\nid", "six id", "--index-url=http://x",
    "-r/etc/passwd", "six>=1;id", "six[a;b]", "../evil", "/etc/passwd", "six @ file:///etc",
    "git+https://example.com/x.git", "six==1.0 ; python_version>'3'", "ｓｉｘ", "x" * 300,
]  # fmt: skip
BAD_NPM = [
    "left-pad;id", "left-pad && id", "$(id)", "`id`", "left-pad|id", "--registry=http://x",
    "-g", "../evil", "/etc/passwd", "file:../x", "git+ssh://x", "@scope/../../x", "LeftPad",
    "left-pad\nid", "left-pad@1.0.0;id", "http://x/y.tgz", "x" * 300,
]  # fmt: skip


@pytest.mark.django_db
def test_package_names_with_shell_or_option_syntax_are_400(api, agent):
    url = f"/api/agents/{agent.pk}/sandbox/packages"
    before = snapshot()
    for manager, names in (("pip", BAD_PIP), ("npm", BAD_NPM)):
        for name in names:
            res = api.post(url, {"packages": ["six", name], "manager": manager}, format="json")
            assert_error_body(res, 400, (manager, name))
    for body in ({"packages": []}, {"packages": ["six"] * 51}, {"packages": "six"},
                 {"packages": ["six"], "manager": "apt"}, {"packages": [None]}):  # fmt: skip
        assert_error_body(api.post(url, body, format="json"), 400, body)
    assert_unchanged(before, "packages")


@pytest.mark.django_db
def test_exec_timeouts_out_of_bounds_are_400(api, agent):
    url = f"/api/agents/{agent.pk}/sandbox/exec"
    for timeout in (0, -1, 600_001, 10**12, "soon", 1.5, True):
        res = api.post(url, {"command": "true", "timeout": timeout}, format="json")
        assert_error_body(res, 400, timeout)
    res = api.post(url, {"command": "x" * 100_001}, format="json")
    assert_error_body(res, 400, "long command")


@pytest.mark.django_db
def test_oversized_prompts_files_and_counts_are_refused(api, agent, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-abuse-test-key-000000")
    before = snapshot()

    def refused(method, url, body, status=400):
        res = getattr(api, method)(url, body, format="json")
        assert_error_body(res, status, (url, str(body)[:80]))
        assert_unchanged(before, url)

    execute = f"/api/agents/{agent.pk}/execute"
    refused("post", execute, {"prompt": "x" * 100_001})
    refused("post", execute, {"prompt": " \n\t "})
    refused("post", execute, {"prompt": "hi", "env": {"BIG": "x" * 40_000}})
    refused("patch", f"/api/agents/{agent.pk}/", {"system_prompt": "x" * 100_001})
    refused(
        "patch",
        f"/api/agents/{agent.pk}/",
        {"skills": [{"name": f"s{i}", "description": "d", "body": "b"} for i in range(51)]},
    )
    refused("post", "/api/agents/", {"name": "big", "secrets": {f"S{i}": "v" for i in range(101)}})

    files = f"/api/agents/{agent.pk}/sandbox/files"
    one = {"path": "a.txt", "content": "x"}
    refused("post", files, {"files": [one] * 101})
    refused("post", files, {"files": []})
    refused("post", files, {"files": [{"path": "big.txt", "content": "x" * (10 * 2**20 + 1)}]})
    refused("post", files, {"files": [{"path": "a", "content": "%%%", "encoding": "base64"}]})
    # Past MAX_REQUEST_BYTES (12 MiB) the body is refused whole, before parsing.
    blob = base64.b64encode(b"\0" * (10 * 2**20)).decode()
    refused("post", files, {"files": [{"path": "b", "content": blob, "encoding": "base64"}]}, 413)
    refused("post", execute, {"prompt": "x" * (13 * 2**20)}, 413)

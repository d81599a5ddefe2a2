"""The network of a local sandbox: its own namespace, a user-mode link out, an egress policy.

Every jail runs in a network namespace of its own, so the host's loopback services
(PostgreSQL, Redis, the broker, the studio's other ports) are simply not there. What it can
reach is decided here, per sandbox, from the agent's `network_policy`:

- `open`: the public internet, through pasta (Debian `passt`), minus the blocked ranges;
- `allowlist`: only the listed domains, through the egress proxy in local_proxy.py, which
  lives in a namespace of its own under the `open` rules; the jail's namespace has the rules
  of `none` plus one more forwarded port, to the proxy;
- `none`: nothing.

Under every policy the jail reaches the studio through one channel: the port of each loopback
studio URL (BACKEND_API_URL: ingest and the model gateway) is forwarded by pasta from the
jail's 127.0.0.1 to the host's, and nothing else on the host's loopback is. The studio
reaches the runtime through a host port bound to 127.0.0.1 only, forwarded to port 8080 in
the jail; so `runtime_url` stays a plain http URL on loopback.

How it is put together (measured on the studio's machines, passt 2023-03, nftables 1.0.6):

- pasta runs as a dedicated unprivileged host uid (`net_uid`) and creates the namespace
  itself, around a `sleep infinity` that holds it (this pasta cannot join a namespace owned
  by root once it has dropped to `nobody`). `ip netns attach` pins the namespace under
  /run/netns, so every later process enters it by name, never by a pid that could be reused.
  pasta's defaults forward the host's loopback ports into the namespace (`-T auto`), which
  would hand the jail PostgreSQL and Redis: every forward is explicit (`-t/-T/-u/-U`), and
  `--no-map-gw` keeps the gateway address from meaning the host.
- nftables rules are loaded into the namespace by root before anything else runs in it. The
  jail's processes are an unprivileged uid in a user namespace of their own, which holds no
  capability over this network namespace, so they cannot change the rules. The rules refuse
  the blocked ranges below explicitly, not by `ipaddress.is_private`: on these machines the
  package registries resolve into a documentation range that Python calls private, while the
  DNS resolver sits in 10/8. So DNS is an explicit exception: the host's resolvers, port 53
  only, under `open` (the proxy's namespace is `open`; the jail under `allowlist` or
  `none` gets no DNS).
- Why the proxy has a namespace of its own rather than an nftables `meta skuid` exception
  in the jail's: the kernel reports a socket's uid as seen from the network namespace's
  owning user namespace (pasta's), where only `net_uid` is mapped; the proxy's uid and the
  jail's both read as the overflow uid there. The proxy runs as `net_uid + 1` (not
  `net_uid`, which owns every sandbox's namespace) with the system Python; its allowlist
  comes on stdin, never argv or environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from sandboxes.backends.base import RUNTIME_PORT, BackendError
from sandboxes.backends.local_jail import proc_start_time

log = logging.getLogger(__name__)

POLICIES = ("open", "allowlist", "none")
DEFAULT_NET_UID = 64900
PROXY_PORT = 3128  # on the namespace's own loopback
SETUP_TIMEOUT = 10.0
# Never reachable from a sandbox, whatever the policy. The host's own addresses and the
# networks they sit on are added at start (host_networks).
BLOCKED = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_HELPER_ENV = {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"}
# Popen objects of the helpers this process started, reaped when they are stopped.
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def binary(name: str) -> str:
    """The absolute path of a system binary (never looked up on a caller's PATH)."""
    path = shutil.which(name, path=_SYSTEM_PATH)
    if not path:
        package = {"pasta": "passt", "nft": "nftables", "ip": "iproute2"}.get(name, name)
        raise BackendError(
            f"Local sandboxes need {name} for their network (Debian/Ubuntu: apt-get install "
            f"{package}).",
            code="SandboxNetworkUnavailable",
        )
    return path


def netns_name(data_dir: str | os.PathLike, sandbox_id: str) -> str:
    """A name under /run/netns unique to this install's sandbox."""
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]
    return f"agent-studio-{digest}-{sandbox_id}"


# --- the policy, as data ----------------------------------------------------------------


def studio_channel(urls) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(loopback ports to forward, other studio host names) for the studio's URLs."""
    ports, hosts = [], []
    for url in urls:
        if not url:
            continue
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host == "localhost" or _is_loopback(host):
            ports.append(port)
        elif host:
            hosts.append(host.lower())
    return tuple(sorted(set(ports))), tuple(dict.fromkeys(hosts))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_networks() -> list[str]:
    """The host's own addresses and the networks on its links (`ip -j addr`)."""
    out = subprocess.run(
        [binary("ip"), "-j", "addr", "show"],
        capture_output=True,
        text=True,
        env=_HELPER_ENV,
        timeout=10,
        check=True,
    ).stdout
    found = []
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if info.get("local"):
                net = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
                found += [str(net.network), str(net.ip)]
    return found


def blocked_networks(extra=()) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) blocked networks, merged so that nftables' interval sets accept them."""
    nets = [ipaddress.ip_network(n, strict=False) for n in (*BLOCKED, *extra)]
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [str(n) for n in v4], [str(n) for n in v6]


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's DNS servers that a namespace can reach through pasta (not loopback ones:
    those would be the namespace's own loopback)."""
    found = []
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    ip = ipaddress.ip_address(words[1].split("%", 1)[0])
                    if not ip.is_loopback:
                        found.append(str(ip))
    return found


def nft_ruleset(*, policy: str, blocked4, blocked6, resolvers) -> str:
    """A namespace's rules under `open` or `none` (`allowlist` is `none` for the jail plus
    `open` for the proxy's namespace): everything leaving it that is not loopback passes
    here."""
    if policy not in ("open", "none"):
        raise ValueError(f"namespace rules are open or none, not {policy!r}")
    rules = [
        'oif "lo" accept',
        "ct state established,related accept",
    ]
    if policy == "open":
        # IPv6 needs neighbour discovery to reach even the gateway.
        rules.append(
            "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept"
        )
        for family, version in (("ip", 4), ("ip6", 6)):
            addresses = [r for r in resolvers if ipaddress.ip_address(r).version == version]
            if addresses:
                rules.append(
                    f"{family} daddr {{ {', '.join(addresses)} }} "
                    "meta l4proto { tcp, udp } th dport 53 accept"
                )
        rules += [
            f"ip daddr {{ {', '.join(blocked4)} }} reject with icmpx type admin-prohibited",
            f"ip6 daddr {{ {', '.join(blocked6)} }} reject with icmpx type admin-prohibited",
            "accept",
        ]
    rules.append("reject with icmpx type admin-prohibited")
    body = "\n".join(f"    {rule}" for rule in rules)
    return (
        "table inet agent_studio {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy drop;\n"
        f"{body}\n"
        "  }\n"
        "}\n"
    )


def jail_env(state: dict | None) -> dict[str, str]:
    """The variables the jail needs to use its network (the proxy, when there is one)."""
    if not state or not state.get("proxy"):
        return {}
    url = f"http://127.0.0.1:{PROXY_PORT}"
    no_proxy = "localhost,127.0.0.1,::1"
    return {
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "http_proxy": url,
        "https_proxy": url,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def enter_argv(state: dict) -> list[str]:
    """The prefix that runs a command (as root, before it drops privileges) in the
    sandbox's network namespace. Fails if the namespace is gone: never the host's."""
    return [binary("nsenter"), f"--net=/run/netns/{state['netns']}", "--"]


# --- processes --------------------------------------------------------------------------


def start(
    *,
    name: str,
    policy: str,
    allowlist=(),
    studio_urls=(),
    runtime_port: int,
    host: str = "127.0.0.1",
    net_uid: int = DEFAULT_NET_UID,
    state_path: Path,
    log_path: Path,
) -> dict:
    """Make the sandbox's namespace (and, if the policy needs the proxy, the proxy's), load
    the rules, start pasta and the proxy; write and return the state that `stop` needs.
    BackendError if anything fails, with nothing left behind."""
    if policy not in POLICIES:
        raise BackendError(f"Unknown network policy {policy!r}; use one of {POLICIES}.")
    ports, remote_hosts = studio_channel(studio_urls)
    # A studio that is not on loopback is reached like any other host: through the proxy
    # when the policy does not let the jail out directly.
    proxy_hosts = (*(allowlist if policy == "allowlist" else ()), *remote_hosts)
    use_proxy = policy != "open" and bool(proxy_hosts)
    blocked4, blocked6 = blocked_networks(host_networks())
    resolvers = host_resolvers()
    if policy == "open" and not resolvers:
        log.warning("no non-loopback DNS server in /etc/resolv.conf: sandboxes get no DNS")

    def rules(policy):
        return nft_ruleset(policy=policy, blocked4=blocked4, blocked6=blocked6, resolvers=resolvers)

    state = {"netns": name, "policy": policy, "proxy": None, "egress": None}
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the helpers, closed below
    try:
        outbound = [str(p) for p in ports]
        if use_proxy:
            # The proxy lives in a namespace of its own under the `open` rules; the jail's
            # namespace (policy `none`) reaches it through one more forwarded port.
            proxy_host_port = free_port()
            state["egress"] = {"netns": f"{name}-egress"}
            _namespace(
                state["egress"],
                inbound=f"127.0.0.1/{proxy_host_port}:{PROXY_PORT}",
                outbound="none",
                rules=rules("open"),
                uid=net_uid,
                out=log_file,
                save=lambda: _save(state_path, state),
            )
            _start_proxy(
                state,
                allow=proxy_hosts,
                blocked=blocked4 + blocked6,
                uid=net_uid + 1,
                out=log_file,
            )
            outbound.append(f"{PROXY_PORT}:{proxy_host_port}")
        _namespace(
            state,
            inbound=f"{host}/{runtime_port}:{RUNTIME_PORT}",
            outbound=",".join(outbound) or "none",
            rules=rules("open" if policy == "open" else "none"),
            uid=net_uid,
            out=log_file,
            save=lambda: _save(state_path, state),
        )
    except BaseException:
        _save(state_path, state)
        stop(state_path)
        raise
    finally:
        log_file.close()
    log.info(
        "sandbox network up netns=%s policy=%s studio_ports=%s proxy=%s",
        name,
        policy,
        ports,
        use_proxy,
    )
    return state


def stop(state_path: Path) -> None:
    """Stop the helpers and delete the namespaces (idempotent; missing state is fine)."""
    try:
        state = json.loads(Path(state_path).read_text())
    except (FileNotFoundError, ValueError):
        return
    parts = [state, *([state["egress"]] if state.get("egress") else [])]
    pids = [state.get("proxy")] + [p.get(k) for p in parts for k in ("holder", "pasta")]
    for entry in filter(None, pids):
        pid, started = entry
        if proc_start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with _children_lock:
        for entry in filter(None, pids):
            proc = _children.pop(entry[0], None)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
    for part in parts:
        if Path(f"/run/netns/{part['netns']}").exists():
            subprocess.run(
                [binary("ip"), "netns", "delete", part["netns"]],
                env=_HELPER_ENV,
                capture_output=True,
                timeout=10,
            )
    with contextlib.suppress(FileNotFoundError):
        Path(state_path).unlink()


def alive(state_path: Path) -> bool:
    """Whether the sandbox's namespace exists and pasta still serves it."""
    state = load(state_path)
    pasta = state and state.get("pasta")
    return (
        bool(pasta)
        and proc_start_time(pasta[0]) == pasta[1]
        and Path(f"/run/netns/{state['netns']}").exists()
    )


def load(state_path: Path) -> dict | None:
    try:
        return json.loads(Path(state_path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _namespace(part: dict, *, inbound: str, outbound: str, rules: str, uid: int, out, save):
    """pasta (as `uid`) around a holder in a new namespace, pinned at /run/netns/<netns>,
    with `rules` loaded before `start` returns. Fills part["pasta"], part["holder"]."""
    argv = [
        *(binary("setpriv"), "--reuid", str(uid), "--regid", str(uid), "--clear-groups"),
        *(binary("pasta"), "--foreground", "--quiet", "--config-net", "--no-map-gw"),
        *("-t", inbound, "-u", "none", "-T", outbound, "-U", "none"),
        *("--", binary("sleep"), "infinity"),
    ]
    proc = subprocess.Popen(
        argv,
        env=_HELPER_ENV,
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    with _children_lock:
        _children[proc.pid] = proc
    part["pasta"] = [proc.pid, proc_start_time(proc.pid)]
    save()
    deadline = time.monotonic() + SETUP_TIMEOUT
    while not part.get("holder"):
        if proc.poll() is not None:
            raise BackendError("pasta failed to start the sandbox's network.")
        if time.monotonic() > deadline:
            raise BackendError("pasta did not start the sandbox's network in time.")
        holder = _children_of(proc.pid)
        if holder:
            part["holder"] = [holder[0], proc_start_time(holder[0])]
        else:
            time.sleep(0.005)
    save()
    _run([binary("ip"), "netns", "attach", part["netns"], str(part["holder"][0])])
    # pasta configures addresses and routes after it starts the holder: wait for them, then
    # load the rules before anything else runs in the namespace.
    while not json.loads(
        _run([binary("ip"), "-n", part["netns"], "-j", "route", "show", "default"]) or "[]"
    ):
        if time.monotonic() > deadline:
            raise BackendError("pasta did not configure the sandbox's network in time.")
        time.sleep(0.01)
    _run([*enter_argv(part), binary("nft"), "-f", "-"], stdin=rules)
    # ...and pasta binds its forwards last: wait until both ends listen.
    ns_ports = {int(spec.split(":")[0]) for spec in outbound.split(",") if spec != "none"}
    host, _, ports = inbound.rpartition("/")
    host_port = int(ports.split(":")[0])
    holder = part["holder"][0]
    while not (
        ns_ports <= _listening(f"/proc/{holder}/net/tcp", "127.0.0.1")
        and host_port in _listening("/proc/self/net/tcp", host)
    ):
        if time.monotonic() > deadline:
            raise BackendError("pasta did not open the sandbox's forwarded ports in time.")
        time.sleep(0.005)


def _listening(path: str, address: str) -> set[int]:
    """Ports listening on IPv4 `address`, from a /proc/<pid>/net/tcp table."""
    wanted = socket.inet_aton(address)[::-1].hex().upper()  # the table is little-endian
    ports = set()
    with open(path) as f:
        for line in f.readlines()[1:]:
            local, _, st = line.split()[1:4]
            address, port = local.split(":")
            if st == "0A" and address == wanted:
                ports.add(int(port, 16))
    return ports


def _start_proxy(state, *, allow, blocked, uid, out) -> None:
    source = (Path(__file__).with_name("local_proxy.py")).read_text()
    config = {"allow": list(allow), "blocked": list(blocked), "port": PROXY_PORT}
    program = f"{source}\nmain({json.dumps(config)!r})\n"
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else binary("python3")
    argv = [
        *enter_argv(state["egress"]),
        *(binary("setpriv"), "--reuid", str(uid), "--regid", str(uid), "--clear-groups"),
        *("--no-new-privs", python, "-I", "-"),
    ]
    proc = subprocess.Popen(
        argv,
        env=_HELPER_ENV,
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=out,
        start_new_session=True,
    )
    with _children_lock:
        _children[proc.pid] = proc
    state["proxy"] = [proc.pid, proc_start_time(proc.pid)]
    proc.stdin.write(program.encode())
    proc.stdin.close()
    ready = proc.stdout.readline()  # the proxy prints "ready" once it listens
    proc.stdout.close()
    if ready.strip() != b"ready":
        raise BackendError("The sandbox's egress proxy failed to start.")


def _run(argv, *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=_HELPER_ENV,
            timeout=SETUP_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"{os.path.basename(argv[0])} timed out.") from None
    if done.returncode:
        log.warning("sandbox network step failed: %s: %s", argv[:4], done.stderr.strip()[-500:])
        raise BackendError("Could not set up the sandbox's network.")
    return done.stdout


def _save(path: Path, state: dict) -> None:
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if int(data[data.rindex(b")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found

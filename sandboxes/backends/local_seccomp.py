"""The seccomp filter of local sandboxes, built with libseccomp (Debian's libseccomp2, through
the pyseccomp ctypes binding) and handed to bubblewrap as BPF (`--seccomp FD`).

In the spirit of the default profiles of Docker and Podman: everything is allowed except the
calls that administer the machine rather than use it. The jail holds no capability on the
host anyway (its uid is an unprivileged one); this is the second wall, against kernel bugs
reachable through these rarely needed calls, and against a sandbox making namespaces of
its own (where it would hold capabilities again).

What was checked to still work under it: the Claude CLI (its Bash tool), python and pip,
node and npm, headless Chromium with --no-sandbox (tests/abuse/test_jail_boundary.py).
"""

from __future__ import annotations

import errno
import functools
import tempfile

# Refused with EPERM. Grouped as the default profiles group them.
DENIED = (
    # mounts and the root
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # namespaces: a new user namespace would hand the sandbox capabilities again
    "unshare",
    "setns",
    # the kernel itself
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "nfsservctl",
    "lookup_dcookie",
    "vhangup",
    "iopl",
    "ioperm",
    "uselib",
    "_sysctl",
    # the clock
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "stime",
    # kernel keyrings, BPF, perf, userfaultfd, file handles, obsolete calls
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "get_kernel_syms",
    "query_module",
    "vm86",
    "vm86old",
)

# clone(2) flags that make namespaces (clone3 is refused with ENOSYS, as Docker does, so
# that libc falls back to clone(2), whose flags a filter can see).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
NAMESPACE_FLAGS = (
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_NEWTIME,
)


@functools.cache
def program() -> bytes:
    """The filter as BPF bytes for this machine's architecture (built once)."""
    import pyseccomp as sc

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a system call on this architecture
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_FLAGS:  # one rule per flag: rules on one call are or-ed
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def available() -> bool:
    try:
        return bool(program())
    except (ImportError, OSError, RuntimeError):
        return False

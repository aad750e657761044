"""Child processes of the development environment: find binaries, wait, stop by PID.

Only processes this module started are ever signalled, and only by PID.
:func:`namespace_prefix` wraps a command so that everything it starts dies
with it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from shared.errors import DevEnvError


def find_binary(name: str) -> Path:
    """A program next to this Python (a virtualenv's bin/) first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        raise DevEnvError(f"cannot find {name}: not beside {sys.executable} nor on PATH")
    return Path(found)


def find_system_tool(name: str, package: str | None = None) -> str:
    """A system program on PATH or in the sbin folders; the error names its Debian ``package``."""
    # /usr/sbin is often missing from PATH outside a root login shell.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise DevEnvError(
            f"cannot find {name}: it is not installed (apt-get install {package or name})"
        )
    return found


def namespace_prefix() -> list[str]:
    """A command prefix: private mount + PID namespaces that die with the returned process.

    From the main thread the whole tree also dies with this Python process
    (parent-death signal). Not from other threads: that signal fires when the
    *thread* that started the child exits, which would kill a server at random.
    """
    prefix = []
    if threading.current_thread() is threading.main_thread():
        prefix = [find_system_tool("setpriv", "util-linux"), "--pdeathsig", "KILL", "--"]
    # util-linux's unshare blocks SIGINT/SIGTERM while it waits for its child:
    # only SIGKILL stops it, and --kill-child then SIGKILLs the namespace's PID 1.
    unshare = [
        find_system_tool("unshare", "util-linux"),
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
    ]
    return [*prefix, *unshare, "--kill-child", "--"]


def wait_for_port(
    host: str, port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``host:port`` accepts TCP connections, or fail naming it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevEnvError(
                f"cannot reach {host}:{port}: the process exited with status {proc.returncode}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise DevEnvError(f"cannot reach {host}:{port}: nothing listening after {timeout:.0f}s")


def stop_process(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 10.0
) -> int:
    """Signal our own child by PID, wait, and kill it if it outlives ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a child's log file, for an error message; never raises."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])

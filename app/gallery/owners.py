"""Which process holds a piece of work (a job, a reindex's lease), and whether it died.

A process is named `host:pid:start`, its start time read from the kernel, so a
pid the kernel has since given to another process does not pass for the old
one. A process on this machine is known dead at once when no process with that
pid and start time runs; one on another machine can only be presumed dead when
its heartbeat or lease lapses.
"""

import os
import socket
from functools import cache
from pathlib import Path


@cache
def this_process() -> str:
    """This process's name as recorded on the work it takes."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def is_dead(owner: str | None) -> bool:
    """True when `owner` ran on this machine and is gone; False when it lives or runs
    elsewhere (or is unknown, which only lapsing can settle)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != started


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    return stat.rpartition(")")[2].split()[19]

"""Who acts, and for which case: what every audited action is told by its front door."""

import getpass
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The person or client behind an action, as the audit trail names them.

    `key_name` and `role` are those of the API key (or the command line's
    local user); `client` is the network address the request came from;
    `request_id` ties the record to the service's log lines.
    """

    key_name: str
    role: str
    client: str
    request_id: str


@dataclass(frozen=True)
class Case:
    """Why a search was run: the case it serves (required) and a free-text purpose."""

    reference: str
    purpose: str | None = None


def local_actor(command: str) -> Actor:
    """The operator of a `lineup` command on this machine: whoever can run it holds the
    database itself, so it acts as an admin, named by the system account."""
    return Actor(
        key_name=f"local:{_login_name()}",
        role="admin",
        client="local",
        request_id=f"cli-{command}-{os.getpid()}",
    )


SYSTEM = Actor(key_name="system", role="admin", client="local", request_id="system")
"""Lineup itself, for what it does on its own schedule (the daily purge)."""


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return f"uid{os.getuid()}"

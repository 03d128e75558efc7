"""Who holds a lease: a name for this process precise enough that another process on the same
machine can prove it dead (and take its leases at once) while nothing else ever can.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass


def _process_start_ticks(pid: int) -> str:
    # With the start time in the owner name, a recycled pid is not mistaken for a live owner.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return "0"


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    # "pid:[4026531836]" -> "4026531836": the same number means the same PID namespace.
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]") or "-"
    except OSError:
        return "-"


@dataclass(frozen=True)
class OwnerIdentity:
    """Who holds a lease, precisely enough to prove it dead.

    A host name is not enough: containers with `--network host` or Kubernetes `hostNetwork`
    share it while each has its own PID namespace, where PID 1 (or a missing PID) says nothing
    about a process in another namespace. Boot id and PID namespace pin down where the pid
    means something; the random instance id keeps two owners apart even when everything else
    matches (a pid reused after a reboot into the same namespace number).
    """

    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    start: str
    instance: str

    def __str__(self) -> str:
        return ":".join(
            (
                OWNER_FORMAT,
                self.host,
                self.boot_id,
                self.pid_namespace,
                str(self.pid),
                self.start,
                self.instance,
            )
        )

    @classmethod
    def parse(cls, owner: str) -> OwnerIdentity | None:
        """The identity in a lease-owner string; None for any other form (an older ledger's
        `host:pid:start`, or a name a test or a person chose), which is never proved dead."""
        parts = owner.split(":")
        if len(parts) != 7 or parts[0] != OWNER_FORMAT or not parts[4].isdigit():
            return None
        _, host, boot_id, pid_namespace, pid, start, instance = parts
        return cls(host, boot_id, pid_namespace, int(pid), start, instance)


#: The first field of every owner string this version writes.
OWNER_FORMAT = "o2"

_identity: OwnerIdentity | None = None


def process_identity() -> OwnerIdentity:
    """This process's identity (a new instance id after a fork)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity.pid != pid:
        _identity = OwnerIdentity(
            host=socket.gethostname().replace(":", "_")[:64],
            boot_id=_read_text("/proc/sys/kernel/random/boot_id") or "-",
            pid_namespace=_pid_namespace(),
            pid=pid,
            start=_process_start_ticks(pid),
            instance=uuid.uuid4().hex[:12],
        )
    return _identity


def process_owner() -> str:
    """This process's lease-owner name (see OwnerIdentity)."""
    return str(process_identity())


def owner_is_dead_local_process(owner: str) -> bool:
    """Whether `owner` is provably dead: a process of this boot and this PID namespace that no
    longer exists, or whose pid now belongs to a process started at another time. Anything that
    cannot be proved (another host, boot or namespace, an unknown form) must let its lease
    lapse instead."""
    other = OwnerIdentity.parse(owner)
    here = process_identity()
    if other is None or "-" in (other.boot_id, other.pid_namespace):
        return False
    if (other.host, other.boot_id, other.pid_namespace) != (
        here.host,
        here.boot_id,
        here.pid_namespace,
    ):
        return False
    if other.pid == here.pid:
        return other.instance != here.instance and other.start != here.start
    try:
        os.kill(other.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    current = _process_start_ticks(other.pid)
    return other.start != "0" and current != "0" and current != other.start

"""Lease owners are named precisely enough that a lease is taken over early only when its owner is
provably dead: same boot, same PID namespace, and the process gone (or its pid reused)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from ledger.core.owner import OwnerIdentity, owner_is_dead_local_process, process_identity


def exited_process_owner() -> str:
    return subprocess.run(
        [sys.executable, "-c", "from ledger.core.owner import process_owner as o; print(o())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_an_owner_names_host_boot_namespace_process_and_instance() -> None:
    """The owner string round-trips and carries every part of the identity."""
    here = process_identity()
    assert OwnerIdentity.parse(str(here)) == here
    assert here.boot_id != "-" and here.pid_namespace != "-"
    assert len(str(here)) <= 200  # the lease_owner column


def test_an_exited_process_of_this_boot_and_namespace_is_dead() -> None:
    """A process that ran here and exited is provably dead."""
    assert owner_is_dead_local_process(exited_process_owner())


def test_a_live_owner_is_not_dead() -> None:
    """This very process is alive."""
    assert not owner_is_dead_local_process(str(process_identity()))


def test_an_owner_in_another_pid_namespace_is_never_proved_dead() -> None:
    """Same host and boot but another PID namespace (a container with the host's network): its
    pid means nothing here, so its lease must lapse instead."""
    dead = OwnerIdentity.parse(exited_process_owner())
    assert dead is not None
    assert not owner_is_dead_local_process(str(replace(dead, pid_namespace="1")))
    as_pid_one = replace(process_identity(), pid_namespace="1", pid=1, instance="other")
    assert not owner_is_dead_local_process(str(as_pid_one))


def test_an_owner_of_another_boot_or_host_is_never_proved_dead() -> None:
    """Another boot id or host name: nothing here can prove it dead."""
    dead = OwnerIdentity.parse(exited_process_owner())
    assert dead is not None
    assert not owner_is_dead_local_process(str(replace(dead, boot_id="another-boot")))
    assert not owner_is_dead_local_process(str(replace(dead, host="another-host")))


def test_a_reused_pid_is_dead_when_its_start_time_differs() -> None:
    """A pid that now belongs to a process started at another time: the owner is gone."""
    reused = replace(process_identity(), start="1", instance="earlier")
    assert owner_is_dead_local_process(str(reused))


def test_owner_strings_of_other_forms_are_never_proved_dead() -> None:
    """An older ledger's `host:pid:start`, or any name a person chose, must lapse."""
    here = process_identity()
    assert not owner_is_dead_local_process(f"{here.host}:999999:1")
    assert not owner_is_dead_local_process("some-other-host:1:1")
    assert not owner_is_dead_local_process("me")

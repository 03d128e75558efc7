"""Several hosts on one machine, for tests of what crosses a network.

Each host is a network namespace joined to a bridge in the root namespace by a veth pair, and
every command run "on" it also gets its own UTS namespace (its own host name), PID namespace
(its own PID 1 and /proc) and mount namespace with an empty tmpfs as its working folder: what a
host writes there is gone when its command ends, and no host sees another's files. Services the
hosts share (PostgreSQL, the emulator) are reached at the bridge's address; PostgreSQL listens
on loopback only, so a TCP forwarder on the bridge's address carries its connections.

Needs root, iproute2 (`ip netns`, veth, bridge) and util-linux (`unshare`, `mount`):
`namespaces_unavailable()` says why when the machine cannot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Sequence
from typing import Self

#: The working folder every host command starts in (an empty tmpfs of its own, per command).
HOST_WORKDIR = "/tmp/ledger-host"


def namespaces_unavailable() -> str | None:
    """Why this machine cannot make the test hosts, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (the CI runs the suite as root)"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2 / util-linux)"
    name = f"ledger-probe-{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class TcpForwarder:
    """Accepts on (host, any port) and pipes each connection to `target`: how the hosts reach a
    server that listens on the root namespace's loopback only."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


class Hosts:
    """`count` hosts on a bridge; `address` is where they reach the root namespace."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 10000
        self.subnet = 100 + os.getpid() % 150
        self.address = f"10.231.{self.subnet}.1"
        self.bridge = f"lbr{tag}"
        self.names = [f"ledger-{tag}-h{index}" for index in range(count)]
        self._links = [f"lv{tag}h{index}" for index in range(count)]

    def __enter__(self) -> Self:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, (name, link) in enumerate(zip(self.names, self._links, strict=True)):
                _ip("netns", "add", name)
                _ip("-n", name, "link", "set", "lo", "up")
                _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
                _ip("link", "set", link, "master", self.bridge, "up")
                _ip(
                    "-n",
                    name,
                    "addr",
                    "add",
                    f"10.231.{self.subnet}.{10 + index}/24",
                    "dev",
                    "eth0",
                )
                _ip("-n", name, "link", "set", "eth0", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name, link in zip(self.names, self._links, strict=True):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        """`argv` run on host `index`: its network, its host name `host<index>`, PID 1 of its
        own PID namespace, in an empty tmpfs working folder that no other host sees."""
        script = (
            f"hostname host{index} && mkdir -p {HOST_WORKDIR} && "
            f'mount -t tmpfs tmpfs {HOST_WORKDIR} && cd {HOST_WORKDIR} && exec "$@"'
        )
        return [
            "ip", "netns", "exec", self.names[index],
            "unshare", "--uts", "--mount", "--pid", "--fork", "--mount-proc",
            "sh", "-c", script, "sh", *argv,
        ]  # fmt: skip

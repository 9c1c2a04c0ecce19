"""Replicas as separate hosts on one machine: one Linux network namespace per replica (``ip netns``,
root only), each with its own address on a bridge in the host's namespace, so a cut link is the
kernel's doing, not the transport's fault layer.

Layout for a lab with tag ``T`` and ``n`` replicas: bridge ``obT`` with ``10.A.B.254/24`` (the
harness reaches every replica's API through it), namespace ``orT-i`` holding ``eth0`` with
``10.A.B.(i+1)/24`` (the other end, ``ovTi``, on the bridge) and its own loopback (the admin API
stays on it, reached with ``ip netns exec``). A link is cut with a blackhole route to the peer's
address on each side (both ways), which needs nothing beyond iproute2 (nftables is not installed
on every machine; a route is as much the kernel's as a rule). Where namespaces are refused (not
root, no ``ip``, a container without the capability) :func:`refused` says why and scenarios skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence


class NetnsError(Exception):
    """An ``ip`` command of the lab failed (the message carries its output)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def refused() -> str | None:
    """Why this machine cannot run a lab (None if it can): checked by making a namespace."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"ordo-probe-{os.getpid()}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` refused: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class NetnsLab:
    def __init__(self, n: int, tag: str | None = None) -> None:
        number = os.getpid() % 4096 if tag is None else sum(tag.encode()) % 4096
        self.n = n
        self.tag = tag or f"{number:x}"
        self.subnet = f"10.{200 + number // 256 % 50}.{number % 256}"
        self.bridge = f"ob{self.tag}"
        self._up = False

    def namespace(self, replica: int) -> str:
        return f"or{self.tag}-{replica}"

    def address(self, replica: int) -> str:
        return f"{self.subnet}.{replica + 1}"

    @property
    def hosts(self) -> list[str]:
        return [self.address(i) for i in range(self.n)]

    def command(self, replica: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the replica's namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace(replica), *argv]

    def setup(self) -> None:
        self.teardown()  # leftovers of a run that was killed
        self._up = True
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, veth = self.namespace(i), f"ov{self.tag}{i}"
            _ip("netns", "add", ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def block(self, replica: int, peer: int) -> None:
        """``replica``'s kernel drops what it sends to ``peer`` (so no connection either way
        completes: the replies are dropped too). Idempotent."""
        _ip("-n", self.namespace(replica), "route", "replace", "blackhole", f"{self.address(peer)}/32")

    def unblock(self, replica: int) -> None:
        _ip("-n", self.namespace(replica), "route", "flush", "type", "blackhole", check=False)

    def cut(self, a: int, b: int) -> None:
        """Cut the link between replicas ``a`` and ``b`` on both sides."""
        self.block(a, b)
        self.block(b, a)

    def isolate(self, replica: int) -> None:
        for other in range(self.n):
            if other != replica:
                self.cut(replica, other)

    def blocked(self, replica: int) -> list[int]:
        """The peers ``replica``'s kernel drops traffic to (its blackhole routes)."""
        out = _ip("-n", self.namespace(replica), "route", "show", "type", "blackhole").stdout
        addresses = {line.split()[1].split("/")[0] for line in out.splitlines() if line.startswith("blackhole")}
        return [i for i in range(self.n) if self.address(i) in addresses]

    def heal(self) -> None:
        for i in range(self.n):
            self.unblock(i)

    def teardown(self) -> None:
        for i in range(self.n):
            _ip("netns", "del", self.namespace(i), check=False)
        _ip("link", "del", self.bridge, check=False)
        self._up = False

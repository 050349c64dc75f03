"""The test suite's network net: a process that installs it connects to 127.0.0.0/8 and ::1 only.

Every connect, sendto and name look-up is checked *before* the system call. An address outside
loopback raises `NetRefused` (a ConnectionRefusedError, so client code handles it as it would a
refused connection) whose message names the address, and the refusal is appended to the file
named by $KB_TEST_NET_LOG, where the test session sees it even when the process that tried
swallowed the error (a webhook delivery in a worker thread, say) and fails the test.

Installed in pytest by tests/conftest.py and in every Python process the tests start through
`sitecustomize.py` beside this file, which conftest puts first on the PYTHONPATH they inherit.
Non-Python servers the tests start (redis-server, HAProxy, Chroma's Rust server) are configured
to reach nothing but loopback; this net cannot see inside them.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

LOG_ENV = "KB_TEST_NET_LOG"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_installed = False


class NetRefused(ConnectionRefusedError):
    """Raised instead of sending anything to an address outside loopback."""


def _record(what: str) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{time.time():.3f} pid {os.getpid()} {what}\n")
    except OSError:
        pass


def _refuse(what: str) -> NetRefused:
    _record(what)
    return NetRefused(f"loopback-only test net: refused {what} (tests may reach 127.0.0.0/8 and ::1 only)")


def is_loopback(host: str) -> bool:
    """True for a literal loopback address (v4, v6, v4-mapped v6) or a name that always means one."""
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check_address(address: Any, family: int, action: str) -> None:
    if family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple) or not address:
        return  # Unix sockets and socketpairs stay on this machine
    host = str(address[0])
    if not is_loopback(host):
        port = address[1] if len(address) > 1 else "?"
        raise _refuse(f"{action} to {host} port {port}")


def _literal(host: str) -> bool:
    """An address written out, in any form the resolver reads without asking DNS: the usual
    ones, and inet_aton's (2130706433, 127.1, 0x7f.0.0.1)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return False


def _check_name(host: Any, action: str) -> None:
    if host is None or host == "":
        return  # the local host's wildcard or loopback, as the caller asked
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    host = str(host)
    if _literal(host):
        return  # no look-up happens; connect checks the address itself
    if host.lower().rstrip(".") not in _LOCAL_NAMES:
        raise _refuse(f"{action} of the name {host!r}")


def _guard_socket_methods() -> None:
    cls = socket.socket
    original_connect, original_connect_ex = cls.connect, cls.connect_ex
    original_sendto = cls.sendto

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(address, self.family, "connect")
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(address, self.family, "connect")
        return original_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check_address(args[-1], self.family, "sendto")
        return original_sendto(self, data, *args)  # type: ignore[arg-type]

    cls.connect, cls.connect_ex, cls.sendto = connect, connect_ex, sendto  # type: ignore[method-assign]


def _guard_resolvers() -> None:
    getaddrinfo, gethostbyname = socket.getaddrinfo, socket.gethostbyname
    gethostbyname_ex, gethostbyaddr = socket.gethostbyname_ex, socket.gethostbyaddr

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check_name(host, "look-up")
        return getaddrinfo(host, *args, **kwargs)

    def guarded_gethostbyname(host: str) -> str:
        _check_name(host, "look-up")
        return gethostbyname(host)

    def guarded_gethostbyname_ex(host: str) -> Any:
        _check_name(host, "look-up")
        return gethostbyname_ex(host)

    def guarded_gethostbyaddr(host: str) -> Any:
        if not is_loopback(str(host)):
            raise _refuse(f"reverse look-up of {host}")
        return gethostbyaddr(host)

    socket.getaddrinfo = guarded_getaddrinfo
    socket.gethostbyname = guarded_gethostbyname
    socket.gethostbyname_ex = guarded_gethostbyname_ex
    socket.gethostbyaddr = guarded_gethostbyaddr


def _guard_uvloop(module: Any) -> None:
    """uvloop connects and resolves in libuv, not through `socket`: check its entry points."""
    loop = module.Loop

    def wrap(name: str, check: Callable[..., None]) -> None:
        original = getattr(loop, name)

        async def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            check(*args, **kwargs)
            return await original(self, *args, **kwargs)

        setattr(loop, name, guarded)

    def connection(_factory: Any = None, host: Any = None, port: Any = None, **_: Any) -> None:
        _check_name(host, "look-up")
        if host is not None:
            _check_address((host, port), socket.AF_INET, "connect")

    def sock_connect(sock: Any, address: Any) -> None:
        _check_address(address, sock.family, "connect")

    def datagram(_factory: Any = None, local_addr: Any = None, remote_addr: Any = None, **_: Any) -> None:
        if remote_addr is not None:
            _check_name(remote_addr[0], "look-up")
            _check_address(remote_addr, socket.AF_INET, "sendto")

    def lookup(host: Any = None, *_: Any, **__: Any) -> None:
        _check_name(host, "look-up")

    wrap("create_connection", connection)
    wrap("sock_connect", sock_connect)
    wrap("create_datagram_endpoint", datagram)
    wrap("getaddrinfo", lookup)


class _UvloopHook(importlib.abc.MetaPathFinder):
    """Guards uvloop when something imports it, so processes that never do pay nothing."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "uvloop":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_guard(module: Any) -> None:
            exec_module(module)
            _guard_uvloop(module)

        loader.exec_module = exec_and_guard  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Put the net under this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    _guard_socket_methods()
    _guard_resolvers()
    if "uvloop" in sys.modules:
        _guard_uvloop(sys.modules["uvloop"])
    else:
        sys.meta_path.insert(0, _UvloopHook())

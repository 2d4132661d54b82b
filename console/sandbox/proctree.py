"""The process tree of one sandboxed run, read cheaply from ``/proc`` (psutil elsewhere).

A run's processes are found three ways, so none escapes: the descendants of the root
process; processes re-parented to this (sub-reaper) process whose environment carries the
run's marker variable; and, when stopping, a scan of every process for that marker.  The
listening ports of the tree are read from the processes' socket inodes and the kernel's
``net/tcp`` tables — no ``lsof``, no guessing from ``$PORT``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import struct
import sys
import threading
from dataclasses import dataclass

import psutil

MARKER_ENV = "VERDICT_RUN"
_PR_SET_CHILD_SUBREAPER = 36
_PROC = "/proc"
_HAVE_PROC = sys.platform.startswith("linux") and os.path.isdir("/proc/self/task")
_subreaper_lock = threading.Lock()
_subreaper: bool | None = None


@dataclass(frozen=True)
class ListenSocket:
    """A listening TCP socket: its port and the address it is bound to."""

    port: int
    address: str
    family: int  # 4 or 6
    inode: int = 0


def enable_subreaper() -> bool:
    """Make this process the reaper of orphaned descendants (Linux), once.

    Grandchildren that detach (double fork, ``setsid``) are then re-parented to us instead
    of init, so they stay findable and we can reap them: no zombies are left behind.
    """
    global _subreaper
    with _subreaper_lock:
        if _subreaper is None:
            _subreaper = False
            if sys.platform.startswith("linux"):
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
                except (OSError, AttributeError):
                    _subreaper = False
        return _subreaper


@dataclass(frozen=True)
class Stat:
    """The parts of ``/proc/<pid>/stat`` the sandbox needs."""

    state: str  # R, S, D, Z, ...
    ppid: int
    session: int
    start: int  # start time in clock ticks: with the pid, identifies the process


def stat(pid: int) -> Stat | None:
    """One read of the process's status, or None when it is gone."""
    if not _HAVE_PROC:
        try:
            proc = psutil.Process(pid)
            zombie = proc.status() == psutil.STATUS_ZOMBIE
            return Stat("Z" if zombie else "R", proc.ppid(), 0, int(proc.create_time() * 1000))
        except psutil.Error:
            return None
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return Stat(fields[0].decode(), int(fields[1]), int(fields[4]), int(fields[19]))


def start_time(pid: int) -> int | None:
    """The process's start time (identity against pid reuse), or None."""
    info = stat(pid)
    return info.start if info else None


def state(pid: int) -> str | None:
    """The one-letter state (``R``, ``S``, ``Z`` …) or None if the process is gone."""
    info = stat(pid)
    return info.state if info else None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all of its threads)."""
    if not _HAVE_PROC:
        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    result: list[int] = []
    try:
        tids = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return result
    for tid in tids:
        try:
            with open(f"{_PROC}/{pid}/task/{tid}/children", "rb") as handle:
                result.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return result


def has_marker(pid: int, marker: bytes) -> bool:
    """Whether the process's initial environment contains ``marker`` (``NAME=value``)."""
    if not _HAVE_PROC:
        try:
            env = psutil.Process(pid).environ()
        except psutil.Error:
            return False
        name, _, value = marker.decode().partition("=")
        return env.get(name) == value
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as handle:
            return marker in handle.read().split(b"\0")
    except OSError:
        return False


def scan_marked(marker: bytes) -> list[int]:
    """Every process on the machine whose environment carries ``marker``."""
    pids = [int(p) for p in os.listdir(_PROC) if p.isdigit()] if _HAVE_PROC else psutil.pids()
    me = os.getpid()
    return [pid for pid in pids if pid != me and has_marker(pid, marker)]


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets the process has open."""
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"{_PROC}/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"{_PROC}/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _hex_address(text: str, family: int) -> str:
    raw = bytes.fromhex(text)
    if family == 4:
        return ".".join(str(b) for b in raw[::-1])
    # IPv6 is stored as four little-endian 32-bit words.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    import ipaddress

    return str(ipaddress.IPv6Address(words))


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_netlink_ok = True


def diag_socket() -> socket.socket:
    """A sock_diag netlink socket (of the namespace it is created in)."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG)


def _netlink_listeners(given: socket.socket | None = None) -> dict[int, ListenSocket] | None:
    """Listening TCP sockets of our network namespace through sock_diag netlink (or of
    the namespace ``given`` was created in).

    Much cheaper than reading ``/proc/net/tcp``, which makes the kernel walk every socket
    of the namespace (milliseconds on a busy host); this asks for listeners only.
    None when netlink is unavailable.
    """
    table: dict[int, ListenSocket] = {}
    try:
        sock = given if given is not None else diag_socket()
    except (OSError, AttributeError):
        return None
    with contextlib.nullcontext(sock) if given is not None else sock:
        sock.settimeout(1.0)
        for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
            request = struct.pack("=BBBBI48x", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN)
            header = struct.pack(
                "=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, version, 0
            )
            try:
                sock.sendto(header + request, (0, 0))
                done = False
                while not done:
                    data = sock.recv(65536)
                    offset = 0
                    while offset + 16 <= len(data):
                        length, kind = struct.unpack_from("=IH", data, offset)
                        if kind == _NLMSG_DONE:
                            done = True
                            break
                        if kind == _NLMSG_ERROR or length < 16:
                            return None
                        body = offset + 16
                        port = struct.unpack_from(">H", data, body + 4)[0]
                        raw = data[body + 8 : body + 8 + (4 if version == 4 else 16)]
                        inode = struct.unpack_from("=I", data, body + 68)[0]
                        address = socket.inet_ntop(family, raw)
                        table[inode] = ListenSocket(port, address, version, inode)
                        offset += (length + 3) & ~3
            except OSError:
                return None
    return table


def listening_table(pid: int, diag: socket.socket | None = None) -> dict[int, ListenSocket]:
    """Listening TCP sockets in ``pid``'s network namespace, keyed by inode (``diag``: a
    netlink socket created in that namespace, when it is not ours)."""
    global _netlink_ok
    if diag is not None:
        table = _netlink_listeners(diag)
        if table is not None:
            return table
    if _netlink_ok and same_netns(pid):
        table = _netlink_listeners()
        if table is not None:
            return table
        _netlink_ok = False
    return _proc_listening_table(pid)


def same_netns(pid: int) -> bool:
    """Whether ``pid`` shares our network namespace (True when that cannot be told)."""
    try:
        return os.readlink(f"{_PROC}/{pid}/ns/net") == os.readlink(f"{_PROC}/self/ns/net")
    except OSError:
        return True


def _proc_listening_table(pid: int) -> dict[int, ListenSocket]:
    """Listening TCP sockets from ``/proc/<pid>/net/tcp{,6}``, keyed by inode."""
    table: dict[int, ListenSocket] = {}
    for name, family in (("tcp", 4), ("tcp6", 6)):
        try:
            with open(f"{_PROC}/{pid}/net/{name}", encoding="ascii") as handle:
                next(handle, None)
                for row in handle:
                    parts = row.split()
                    if len(parts) < 10 or parts[3] != "0A":  # 0A = TCP_LISTEN
                        continue
                    address, _, port = parts[1].partition(":")
                    inode = int(parts[9])
                    table[inode] = ListenSocket(
                        int(port, 16), _hex_address(address, family), family, inode
                    )
        except OSError:
            continue
    return table


def listening_ports(
    pids: list[int], diag: socket.socket | None = None
) -> list[tuple[int, ListenSocket]]:
    """The listening sockets owned by any of ``pids``, as ``(pid, socket)`` pairs
    (``diag``: see :func:`listening_table`)."""
    if not _HAVE_PROC:
        return _listening_ports_psutil(pids)
    owned = {pid: socket_inodes(pid) for pid in pids}
    if not any(owned.values()):
        return []  # no sockets at all: skip reading the kernel tables
    reader = next(pid for pid, inodes in owned.items() if inodes)
    table = listening_table(reader, diag)
    found = []
    for pid, inodes in owned.items():
        for inode in sorted(inodes):
            if inode in table:
                found.append((pid, table[inode]))
    return found


def _listening_ports_psutil(pids: list[int]) -> list[tuple[int, ListenSocket]]:
    found = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                family = 6 if ":" in conn.laddr.ip else 4
                found.append((pid, ListenSocket(conn.laddr.port, conn.laddr.ip, family)))
    return found


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of ``pids`` added up."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    for pid in pids:
        if _HAVE_PROC:
            try:
                with open(f"{_PROC}/{pid}/statm", "rb") as handle:
                    total += int(handle.read().split()[1]) * page
            except (OSError, IndexError, ValueError):
                continue
        else:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
    return total


def send(pid: int, sig: signal.Signals) -> bool:
    """Send ``sig``; False when the process is already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def reap(pid: int) -> bool:
    """Collect a dead child of ours (no zombie left); True when it was collected."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child, or already collected
    except OSError as exc:  # pragma: no cover - unexpected errno
        return exc.errno == errno.ECHILD
    return done == pid

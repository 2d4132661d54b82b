"""The probe agent that runs beside the app in its pod (standard library only).

It is shipped to the pod in the run's ConfigMap and started in a sidecar container.  The
pod's containers share one network namespace, so the agent sees the app's listening
sockets (through sock_diag netlink, falling back to ``/proc/net/tcp`` and ``tcp6``) and
reaches them on localhost.  It reports every
step as one marker line on its own log, which the worker follows: no ``pods/exec``, no
network path from the worker to the pod, and it keeps working under a default-deny
NetworkPolicy.  Markers come from the agent's container, never the app's, so an app
cannot forge them.

What it does, mirroring the worker's verification sequence:

- whenever the set of listening TCP ports changes: ``{"ev": "ports", "ports": [...]}``;
- once for each port that appears: ``GET /`` → ``{"ev": "http", "port": P, "path": "/",
  "status": 200}`` (or ``"error"`` / ``"timed_out"``);
- when ``GET /`` answered below 500 and a health path is set: up to three health requests
  half a second apart, stopping at the first 2xx, each reported the same way.

Environment: ``VERDICT_AGENT_PORT`` (the port offered to the app), ``VERDICT_AGENT_HEALTH``
(the health path, may be empty), ``VERDICT_AGENT_TIMEOUT`` (the start timeout in seconds).
This module must not import anything outside the standard library.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

MARKER = "@@verdict-agent "
POLL_INTERVAL = 0.01  # a pod's own table holds a handful of sockets: cheap to read
HTTP_TIMEOUT = 10.0
HEALTH_ATTEMPTS = 3
HEALTH_INTERVAL = 0.5
_LISTEN = "0A"
_write_lock = threading.Lock()


def emit(event: dict[str, object]) -> None:
    """Print one marker line (whole lines only, also from several threads)."""
    line = MARKER + json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n"
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _decode_address(hex_address: str) -> str:
    """``0100007F`` → ``127.0.0.1``; 32 hex digits → an IPv6 address (kernel byte order)."""
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def parse_listening(text: str) -> list[tuple[int, str]]:
    """The listening sockets of one ``/proc/net/tcp``-style table: (port, address)."""
    found: list[tuple[int, str]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _LISTEN:
            continue
        address, _, port_hex = fields[1].partition(":")
        try:
            found.append((int(port_hex, 16), _decode_address(address)))
        except ValueError:
            continue
    return found


_SOCK_DIAG = 4  # NETLINK_SOCK_DIAG
_BY_FAMILY = 20  # SOCK_DIAG_BY_FAMILY
_DUMP = 0x1 | 0x300  # NLM_F_REQUEST | NLM_F_DUMP
_NL_ERROR, _NL_DONE = 2, 3
_TCP_LISTEN = 10


def netlink_listening() -> dict[int, str] | None:
    """Listening TCP ports through sock_diag netlink, or None where it is unavailable.

    Reading ``/proc/net/tcp`` makes the kernel walk the whole host's socket table even in
    a pod's own namespace (milliseconds on a busy node, each poll); this asks for this
    namespace's listeners only (tens of microseconds).
    """
    import struct

    ports: dict[int, str] = {}
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _SOCK_DIAG)
    except (OSError, AttributeError):
        return None
    with sock:
        sock.settimeout(1.0)
        for family, size in ((socket.AF_INET, 4), (socket.AF_INET6, 16)):
            request = struct.pack("=BBBBI48x", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN)
            header = struct.pack("=IHHII", 16 + len(request), _BY_FAMILY, _DUMP, 1, 0)
            try:
                sock.sendto(header + request, (0, 0))
                done = False
                while not done:
                    data = sock.recv(65536)
                    offset = 0
                    while offset + 16 <= len(data):
                        length, kind = struct.unpack_from("=IH", data, offset)
                        if kind == _NL_DONE:
                            done = True
                            break
                        if kind == _NL_ERROR or length < 16:
                            return None
                        body = offset + 16
                        port = struct.unpack_from(">H", data, body + 4)[0]
                        raw = data[body + 8 : body + 8 + size]
                        ports.setdefault(port, socket.inet_ntop(family, raw))
                        offset += (length + 3) & ~3
            except OSError:
                return None
    return ports


def listening_ports(proc_net: str = "/proc/net", netlink: bool = True) -> dict[int, str]:
    """Every listening TCP port of this network namespace, with one address each
    (netlink when available, else ``/proc/net/tcp`` and ``tcp6``)."""
    if netlink:
        found = netlink_listening()
        if found is not None:
            return found
    ports: dict[int, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_net, table), encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            continue
        for port, address in parse_listening(text):
            ports.setdefault(port, address)
    return ports


def http_status(port: int, path: str, timeout: float) -> dict[str, object]:
    """One ``GET`` on localhost; only the status line is read."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: verdict-probe"
                "\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            status_line = conn.makefile("rb").readline(65536)
    except TimeoutError:
        return {"timed_out": True, "error": "timed out"}
    except OSError as exc:
        return {"error": exc.strerror or type(exc).__name__}
    parts = status_line.decode("latin-1", errors="replace").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        text = status_line[:60].decode("latin-1", errors="replace").strip()
        return {"error": f"not an HTTP response: {text!r}" if text else "empty response"}
    return {"status": int(parts[1])}


class Agent:
    """Watches the namespace's listening ports and probes each new one over HTTP."""

    def __init__(self, health: str, start_timeout: float, proc_net: str = "/proc/net") -> None:
        self.health = health
        self.deadline = time.monotonic() + start_timeout
        self.proc_net = proc_net

    def _timeout(self) -> float:
        return min(HTTP_TIMEOUT, max(self.deadline - time.monotonic(), 1.0))

    def probe(self, port: int) -> None:
        """``GET /`` then the health checks for one port; every answer is a marker."""
        answer = http_status(port, "/", self._timeout())
        emit({"ev": "http", "port": port, "path": "/", **answer})
        status = answer.get("status")
        if not self.health or not isinstance(status, int) or status >= 500:
            return
        for attempt in range(1, HEALTH_ATTEMPTS + 1):
            answer = http_status(port, self.health, self._timeout())
            emit({"ev": "http", "port": port, "path": self.health, **answer})
            status = answer.get("status")
            if isinstance(status, int) and 200 <= status < 300:
                return
            if attempt < HEALTH_ATTEMPTS:
                time.sleep(HEALTH_INTERVAL)

    def run(self, rounds: int | None = None) -> None:
        """Poll forever (or ``rounds`` times); the pod's deletion ends the agent."""
        known: dict[int, str] = {}
        done = 0
        while rounds is None or done < rounds:
            current = listening_ports(self.proc_net)
            if current != known:
                ports = [[p, a] for p, a in sorted(current.items())]
                emit({"ev": "ports", "ports": ports, "t": round(time.time(), 6)})
                for port in sorted(set(current) - set(known)):
                    threading.Thread(target=self.probe, args=(port,), daemon=True).start()
                known = current
            done += 1
            time.sleep(POLL_INTERVAL)


def safe_extract(archive: str, dest: str) -> int:
    """Unpack the project's tar into ``dest``: regular files and directories only, never a
    path that leads outside (absolute, ``..``), a link or a device.  Returns the file count.

    Raises:
        ValueError: the archive holds something that is not allowed.
    """
    import tarfile

    root = os.path.realpath(dest)
    count = 0
    with tarfile.open(archive) as tar:
        for member in tar:
            target = os.path.realpath(os.path.join(root, member.name))
            if not target.startswith(root + os.sep):
                raise ValueError(f"refused path outside the work dir: {member.name!r}")
            if member.isdir():
                os.makedirs(target, mode=0o755, exist_ok=True)
            elif member.isfile():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, open(target, "wb") as out:
                    out.write(source.read())
                os.chmod(target, 0o755 if member.mode & 0o100 else 0o644)
                count += 1
            else:
                raise ValueError(f"refused non-regular entry: {member.name!r}")
    return count


def main() -> None:
    """Entry point in the pod: ``agent.py`` probes; ``agent.py unpack TAR DIR`` unpacks."""
    if sys.argv[1:2] == ["unpack"]:
        count = safe_extract(sys.argv[2], sys.argv[3])
        print(f"unpacked {count} files into {sys.argv[3]}", flush=True)
        return
    health = os.environ.get("VERDICT_AGENT_HEALTH", "")
    if health and not health.startswith("/"):
        health = "/" + health
    timeout = float(os.environ.get("VERDICT_AGENT_TIMEOUT", "30"))
    emit({"ev": "start", "pid": os.getpid()})
    Agent(health, timeout).run()


if __name__ == "__main__":
    main()

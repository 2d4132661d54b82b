"""Tiny launcher: limits, namespaces and parent-death, then exec the sandboxed command.

Run as ``python -I -S launch.py [OPTIONS] -- CMD...``.  Everything is done in the child after
``fork``/``exec`` rather than through ``preexec_fn`` (which is unsafe while the parent has
threads).  The script uses only the standard library and is started with ``-S`` so it costs
a few milliseconds.  Address-space limits are deliberately not used: Node and the JVM
reserve huge virtual ranges and fail to start under ``RLIMIT_AS``.

Options:
  ``--nofile N --fsize BYTES --data BYTES``  resource limits;
  ``--parent PID``  die with the harness (``PR_SET_PDEATHSIG``), also when it is already gone;
  ``--isolate``  run CMD in new PID and mount namespaces (plus a user namespace when not
  root) with its own ``/proc``; ``--network-none`` adds an empty network namespace (loopback
  only); ``--uid U --workdir DIR [--hide DIR:…] [--ways PATH:…]`` (root only) runs CMD as
  the unprivileged user ``U``: the hidden directories are covered by an empty tmpfs (``DIR``
  kept), and the directories on the way to ``DIR`` and to the ``--ways`` paths that ``U``
  could not pass through are opened for passage to those paths only, in the namespace
  only; ``--bind-ro
  SRC=DST:…`` shows each ``SRC`` read-only at ``DST`` in the namespace (a dependency set
  from the shared cache, without copying it).

With ``--isolate`` the launcher stays outside and forks the namespace's first process, a
minimal init: it forwards termination signals to CMD, reaps orphans, and when CMD ends it
hands CMD's wait status to the launcher and exits, upon which the kernel kills every process
left in the namespace (double forks, ``setsid``, cleared environments included).  The
launcher then ends the same way CMD did, so the harness sees CMD's exit code or signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys

_LIMITS = {
    "--nofile": resource.RLIMIT_NOFILE,
    "--fsize": resource.RLIMIT_FSIZE,
    "--data": resource.RLIMIT_DATA,
}
_VALUED = (*_LIMITS, "--parent", "--uid", "--workdir", "--hide", "--ways", "--bind-ro")
_FLAGS = ("--isolate", "--network-none")

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
# What the harness sends to stop a run; the init passes it on to the command.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)

_libc = ctypes.CDLL(None, use_errno=True)


class LaunchError(Exception):
    """A namespace or mount step failed (reported on stderr, exit status 125)."""


def parse(argv: list[str]) -> tuple[dict[str, str], set[str], list[str]]:
    """Split ``argv`` into valued options, flags and the command after ``--``."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    args = list(argv)
    while args and args[0] != "--":
        name = args.pop(0)
        if name in _FLAGS:
            flags.add(name)
        elif name in _VALUED and args:
            values[name] = args.pop(0)
        else:
            raise LaunchError(f"unknown option {name!r}")
    return values, flags, args[1:]


def apply_limits(values: dict[str, str]) -> None:
    """Set the resource limits named in ``values`` (capped at the hard limits)."""
    for name, limit in _LIMITS.items():
        if name not in values:
            continue
        wanted = int(values[name])
        _soft, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(limit, (wanted, wanted))


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)}")


def die_with(parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if that already happened."""
    if not sys.platform.startswith("linux"):  # no PR_SET_PDEATHSIG: the sweep cleans up
        return
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(137)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    result = _libc.mount(
        encode(source), target.encode(), encode(fstype), ctypes.c_ulong(flags), encode(data or None)
    )
    _check(result, f"mount {fstype or source} on {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def enter_namespaces(network_none: bool) -> None:
    """Unshare PID and mount namespaces (and the user namespace when not root)."""
    flags = CLONE_NEWPID | CLONE_NEWNS | (CLONE_NEWNET if network_none else 0)
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(flags), "unshare")
    if uid != 0:  # the same ids inside: files keep their owner, the app is no root
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _own_proc() -> None:
    """Mounts stop propagating to the host; ``/proc`` shows this namespace only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def bind_read_only(pairs: str) -> None:
    """Show each ``SRC`` read-only at ``DST`` (``SRC=DST`` entries, ``os.pathsep``-joined):
    a bind mount, then a remount that makes it read-only (a bind takes no flags)."""
    for pair in filter(None, pairs.split(os.pathsep)):
        source, _, target = pair.partition("=")
        # The target is in the project copy, which project code (an install step) could
        # have rearranged since: a symlink anywhere on its way would move the mount
        # elsewhere.  Nothing of the run is alive now, so what is checked is what is used.
        if os.path.realpath(target) != target:
            raise LaunchError(f"refusing to mount on {target}: a symlink is on its way")
        handle = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            place = _bind_source(handle)
            _mount(source, place, None, MS_BIND)
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
            _mount(None, target, None, flags)
        finally:
            os.close(handle)


def _loopback_up() -> None:
    """A new network namespace starts with ``lo`` down; the app must still bind 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _bind_source(handle: int, name: str = "") -> str:
    return f"/proc/self/fd/{handle}/{name}" if name else f"/proc/self/fd/{handle}"


def hide(directory: str, keep: str) -> None:
    """Cover one of the harness's directories with an empty tmpfs; ``keep`` (the run's
    directory), when inside it, is mounted back at its place."""
    handle = os.open(keep, os.O_PATH | os.O_DIRECTORY)
    try:
        _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k")
        if keep.startswith(directory.rstrip("/") + "/"):
            os.makedirs(keep, mode=0o755)
            _mount(_bind_source(handle), keep, None, MS_BIND | MS_REC)
    finally:
        os.close(handle)


def give_passage(directory: str, names: set[str]) -> None:
    """Let anyone pass through ``directory`` in this mount namespace to ``names`` only, as
    ``chmod o+x`` would for them, without changing it on disk: an x-only tmpfs with just
    those entries bound back.  Its other entries (a home's dotfiles, caches) stay out of
    sight."""
    handle = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    try:
        _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=711,size=64k")
        for name in sorted(names):
            source, target = _bind_source(handle, name), os.path.join(directory, name)
            try:
                info = os.lstat(source)
                if stat.S_ISLNK(info.st_mode):
                    os.symlink(os.readlink(source), target)
                    continue
                if stat.S_ISDIR(info.st_mode):
                    os.mkdir(target)
                else:
                    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
                _mount(source, target, None, MS_BIND | MS_REC)
            except (OSError, LaunchError):
                continue  # an entry that cannot be bound stays out of sight
    finally:
        os.close(handle)


def closed_on_the_way(paths: list[str], uid: int) -> dict[str, set[str]]:
    """Every directory on the way to ``paths`` that ``uid`` could not pass through, with
    the entries of it those paths go through (outermost first).  A symlink on the way is
    followed as the path names it; its target is looked at when it is itself a way."""
    closed: dict[str, set[str]] = {}
    for path in paths:
        current = "/"
        for part in path.strip("/").split("/"):
            try:
                info = os.stat(current)
            except OSError:
                break
            if not stat.S_ISDIR(info.st_mode):
                break
            if not info.st_mode & stat.S_IXOTH and info.st_uid != uid:
                closed.setdefault(current, set()).add(part)
            current = os.path.join(current, part)
    return dict(sorted(closed.items(), key=lambda item: item[0].count("/")))


def prepare_user_view(uid: int, workdir: str, hidden: list[str], ways: list[str]) -> None:
    """Arrange the mounts so the unprivileged ``uid`` reaches ``workdir`` at its path.

    The harness's own directories (data, configuration) are covered first; then every
    directory on the way to ``workdir`` and to ``ways`` (the interpreter, ``$PATH``) that
    ``uid`` could not pass through (``/root`` is 0700) is opened for passage in this
    namespace only, and only towards those paths: interpreters installed there still run,
    while what else the directory holds stays out of sight.
    """
    for directory in hidden:
        if os.path.isdir(directory):
            hide(directory, workdir)
    for directory, names in closed_on_the_way([workdir, *ways], uid).items():
        give_passage(directory, names)


def become(uid: int) -> None:
    """Drop to ``uid`` for good (the command's process only: the init stays root, so its
    parent-death signal, which a change of credentials clears, stays armed)."""
    os.get_exec_path()  # imports what execvp needs while every file is still readable
    os.chdir(os.getcwd())  # the cwd still names the covered directory: take the new one
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _exec(command: list[str]) -> None:
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"launch: cannot run {command[0]}: {exc.strerror}\n")
        os._exit(127)


def _forward_to(pid: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)


def init(
    command: list[str], values: dict[str, str], flags: set[str], status_w: int, alive_r: int
) -> None:
    """The namespace's first process: set up, start ``command``, wait, report, exit."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if select.select([alive_r], [], [], 0)[0]:  # EOF: the launcher died before prctl
        os._exit(137)
    _own_proc()
    bind_read_only(values.get("--bind-ro", ""))  # before the harness's directories are hidden
    if "--network-none" in flags:
        _loopback_up()
    uid = int(values["--uid"]) if "--uid" in values else None
    if uid is not None:
        hidden = [p for p in values.get("--hide", "").split(os.pathsep) if p]
        ways = [p for p in values.get("--ways", "").split(os.pathsep) if p]
        prepare_user_view(uid, values.get("--workdir", os.getcwd()), hidden, ways)
    app = os.fork()
    if app == 0:
        try:
            if uid is not None:
                become(uid)
        except OSError as exc:
            sys.stderr.write(f"launch: cannot become user {uid}: {exc}\n")
            os._exit(125)
        _exec(command)
    _forward_to(app)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == app:  # leaving now makes the kernel kill whatever the app left behind
            os.write(status_w, struct.pack("=i", status))
            os._exit(0)


def end_like(status: int) -> None:
    """Exit with the same code, or die of the same signal, as a child that ended ``status``."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal whose default is to be ignored
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def run_isolated(command: list[str], values: dict[str, str], flags: set[str]) -> None:
    """Fork the namespace's init, relay signals to it, and end the way the command did."""
    enter_namespaces("--network-none" in flags)
    status_r, status_w = os.pipe()  # init -> launcher: the command's wait status
    alive_r, alive_w = os.pipe()  # launcher -> init: EOF once the launcher is gone
    child = os.fork()
    if child == 0:
        os.close(status_r)
        os.close(alive_w)
        try:
            init(command, values, flags, status_w, alive_r)
        except (LaunchError, OSError) as exc:
            sys.stderr.write(f"launch: {exc}\n")
            os._exit(125)
    os.close(status_w)
    os.close(alive_r)
    _forward_to(child)
    _pid, status = os.waitpid(child, 0)
    reported = b""
    while chunk := os.read(status_r, 4 - len(reported)):
        reported += chunk
        if len(reported) == 4:
            break
    end_like(struct.unpack("=i", reported)[0] if len(reported) == 4 else status)


def main() -> None:
    """Entry point: parent-death, limits, then the command (isolated or ``execvp``)."""
    try:
        values, flags, command = parse(sys.argv[1:])
        if "--parent" in values:
            die_with(int(values["--parent"]))
        apply_limits(values)
        if not command:
            raise LaunchError("no command")
        if "--isolate" in flags:
            run_isolated(command, values, flags)
    except (LaunchError, OSError, ValueError) as exc:
        sys.stderr.write(f"launch: {exc}\n")
        sys.exit(125)
    _exec(command)


if __name__ == "__main__":
    main()

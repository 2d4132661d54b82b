"""A shared dependency cache that code from a project cannot poison.

The harness, never the sandbox, builds each dependency set, and builds it without running
any code of the project or of its dependencies:

- Python: ``pip install --only-binary=:all:`` into a scratch virtualenv (wheels only: no
  ``setup.py``, no build backend), from PyPI, ignoring the project's pip configuration
  (``--isolated``) — only plain ``name[extras]<specifiers>`` requirements qualify;
- npm: ``npm ci`` / ``npm install --ignore-scripts`` in a scratch directory holding only the
  project's ``package.json`` and lockfile, from the npm registry, with an empty user config
  (a project's ``.npmrc`` is not read).

A finished set is stored under a key (package manager, interpreter/runtime version, the
dependency declarations) with a manifest of every file's SHA-256.  Before a run uses a set,
every file is checked against the manifest (and nothing may have been added): a set changed
after it was built is evicted and the run installs the ordinary way.  A sandbox with its own
mount namespace then shows the set *read-only in place* (a bind mount at ``.venv`` or
``node_modules``: nothing is copied, and the kernel refuses writes); any other sandbox gets
a copy in its own directory.  Never a link: a link would let a run write into the store.
The sandbox's own package managers keep their caches inside the run directory, and the
store's path is never passed to a run.  What still runs in the sandbox: ``npm rebuild``
for packages with install scripts, and the ordinary install for anything that does not
qualify (sdists, URLs, yarn/pnpm, projects with their own install scripts).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from console.install import VENV_DIR, InstallPlan

NPM_REGISTRY = "https://registry.npmjs.org/"
PYPI_INDEX = "https://pypi.org/simple"
BUILD_TIMEOUT = 600.0
FAILED_RETRY_AFTER = 3600.0  # a failed build (a registry hiccup?) is tried again after this
EVICTED_KEPT = 86400.0  # how long an evicted set is kept aside for runs that mount it
_DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "overrides")

Note = Callable[[str], None]
# Show a directory read-only at a place in the run's project copy; False when the sandbox
# cannot (it has no mount namespace): the set is copied instead.
Mount = Callable[[Path, Path], bool]
# A console script's first line, found from where the script is, not where it was built:
# the same set serves every run directory (the form pip writes for long interpreter paths).
RELOCATABLE_SHEBANG = (
    b"#!/bin/sh\n"
    b"'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")/python\" \"$0\" \"$@\"\n"
    b"' '''\n"
)


class CacheUnusable(Exception):
    """This set cannot be served from the cache; the sandbox installs the ordinary way."""


@dataclass(frozen=True)
class Restored:
    """A set copied into a run, and what is left for the sandbox to run (or None)."""

    files: int
    built: bool  # built by this call (a cold cache) rather than found
    remaining: str | None
    mounted: bool = False  # shown read-only in place rather than copied


def store_dir() -> Path | None:
    """The cache's root (``$VERDICT_DEP_CACHE``, default ``$XDG_CACHE_HOME/verdict/deps``);
    None when the variable is ``off``."""
    value = os.environ.get("VERDICT_DEP_CACHE", "")
    if value.lower() in ("off", "0", "no"):
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "verdict" / "deps"


def _binary_identity(name: str) -> str:
    """The interpreter a set is built for (``python3``, ``node``), identified without
    starting it: its real path, size and modification time."""
    found = shutil.which(name)
    if found is None:
        return ""
    real = os.path.realpath(found)
    stat = os.stat(real)
    return f"{real}:{stat.st_size}:{int(stat.st_mtime)}"


def _harness_env(home: Path) -> dict[str, str]:
    """A minimal environment for the harness's own package-manager runs."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def _key(plan: InstallPlan, project_dir: Path) -> str:
    digest = hashlib.sha256()
    if plan.kind == "python":
        parts: list[object] = ["python", _binary_identity("python3"), sorted(plan.requirements)]
    else:
        base = project_dir / plan.directory
        package = json.loads((base / "package.json").read_text(encoding="utf-8"))
        declared = {k: package.get(k) for k in _DEP_FIELDS} if isinstance(package, dict) else {}
        lock = (base / plan.lockfile).read_text(encoding="utf-8") if plan.lockfile else ""
        parts = [
            "npm",
            _binary_identity("node"),
            plan.lockfile,
            declared,
            lock,
        ]
    digest.update(json.dumps(parts, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _manifest(root: Path, skip: Callable[[str], bool]) -> dict[str, object]:
    """Every file's SHA-256 and every link's target under ``root`` (paths relative to it;
    ``skip`` leaves a path, and what is under it, out).  Read on every run that uses a set:
    one ``scandir`` per directory, whose entries already know their type."""
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    pending = [("", str(root))]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if skip(rel):
                    continue
                if entry.is_symlink():
                    links[rel] = os.readlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    with open(entry.path, "rb") as handle:
                        files[rel] = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"files": files, "links": links}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per key; the others wait and then use what it built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], cwd: Path, home: Path) -> None:
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=_harness_env(home),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CacheUnusable(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise CacheUnusable(lines[-1] if lines else f"exit status {done.returncode}")


def _build_python(plan: InstallPlan, scratch: Path, store: Path) -> dict[str, object]:
    venv = scratch / "venv"
    _run(["python3", "-m", "venv", "--without-pip", str(venv)], scratch, scratch)
    argv = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    argv += ["--isolated", "--only-binary=:all:", "--index-url", PYPI_INDEX]
    argv += ["--cache-dir", str(store / "pip-http"), "--disable-pip-version-check"]
    argv += ["--no-warn-script-location", "--", *plan.requirements]
    _run(argv, scratch, scratch)
    _relocate_scripts(venv)
    tree = scratch / "tree"
    shutil.copytree(venv, tree, symlinks=True)
    manifest = _manifest(tree, lambda rel: False)
    manifest["built_at"] = str(venv)  # rewritten to the run's path in a copy's pyvenv.cfg
    manifest["relocatable"] = True
    return manifest


def _relocate_scripts(venv: Path) -> None:
    """Console scripts start the venv's python next to them, wherever the set is shown."""
    shebang = f"#!{venv}/bin/python".encode()
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        first, newline, rest = data.partition(b"\n")
        if newline and first.rstrip() in (shebang, shebang + b"3"):
            script.write_bytes(RELOCATABLE_SHEBANG + rest)


def _plain_version(spec: object) -> bool:
    """A version or range the registry resolves (``^4.21.0``, ``~1``, ``latest``), not a
    path, URL, git or ``user/repo`` spec, nor an ``npm:`` alias."""
    return isinstance(spec, str) and not any(c in spec for c in ":/\\")


def _registry_only(declared: dict[str, object], lock: object) -> str | None:
    """Why the set could reach beyond the npm registry, or None.  The harness builds on the
    host's network, outside the sandbox: a ``file:``/``git``/URL/``user/repo`` dependency
    or a lockfile entry resolved elsewhere (another host, 127.0.0.1, a link) would be
    fetched by Verdict itself, past ``--network none``."""
    for field in declared.values():
        for name, spec in field.items() if isinstance(field, dict) else ():
            if not _plain_version(spec):
                return f"{name} is not a registry version range ({str(spec)[:60]!r})"
    entries: list[tuple[str, object]] = []
    if isinstance(lock, dict):
        entries += [(k, v) for k, v in (lock.get("packages") or {}).items() if k]
        pending = [lock.get("dependencies") or {}]
        while pending:  # lockfile v1: nested dependencies
            for name, entry in pending.pop().items():
                entries.append((name, entry))
                if isinstance(entry, dict) and isinstance(entry.get("dependencies"), dict):
                    pending.append(entry["dependencies"])
    for name, entry in entries:
        if not isinstance(entry, dict) or entry.get("inBundle") or entry.get("bundled"):
            continue
        resolved, version = entry.get("resolved"), entry.get("version")
        if entry.get("link"):
            return f"{name} in the lockfile is a link, not a registry package"
        if not entry.get("integrity"):
            return f"{name} in the lockfile has no integrity hash"
        if resolved is None:  # npm fetches the version from the registry it is given
            if not _plain_version(version):
                return f"{name} in the lockfile has no registry version ({str(version)[:60]!r})"
        elif not isinstance(resolved, str) or not resolved.startswith(NPM_REGISTRY):
            return f"{name} in the lockfile resolves to {str(resolved)[:80]!r}, not the registry"
    return None


def _build_npm(
    plan: InstallPlan, project_dir: Path, scratch: Path, store: Path
) -> dict[str, object]:
    base = project_dir / plan.directory
    package = json.loads((base / "package.json").read_text(encoding="utf-8"))
    declared = {k: package[k] for k in _DEP_FIELDS if k in package}
    lock = json.loads((base / plan.lockfile).read_text(encoding="utf-8")) if plan.lockfile else {}
    beyond = _registry_only(declared, lock)
    if beyond:
        raise CacheUnusable(f"not cached: {beyond}")
    tree = scratch / "tree"
    tree.mkdir()
    (tree / "package.json").write_text(json.dumps({"name": "deps", "private": True, **declared}))
    if plan.lockfile:
        shutil.copyfile(base / plan.lockfile, tree / plan.lockfile)
    (scratch / "npmrc").write_text("")
    verb = ["ci"] if plan.lockfile else ["install"]
    _run(
        ["npm", *verb, "--ignore-scripts", "--no-audit", "--no-fund", "--registry", NPM_REGISTRY,
         "--userconfig", str(scratch / "npmrc"), "--cache", str(store / "npm-cache")],
        tree,
        scratch,
    )  # fmt: skip
    manifest = _manifest(tree, lambda rel: not rel.startswith("node_modules"))
    manifest["scripts"] = _has_install_scripts(tree / "node_modules")
    return manifest


def _has_install_scripts(node_modules: Path) -> bool:
    """Whether any installed package has a lifecycle script that ``--ignore-scripts`` skipped."""
    for package_json in node_modules.glob("**/package.json"):
        if package_json.parent.parent.name not in ("node_modules",) and not (
            package_json.parent.parent.name.startswith("@")
        ):
            continue
        try:
            scripts = json.loads(package_json.read_text(encoding="utf-8")).get("scripts", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(scripts, dict) and {"preinstall", "install", "postinstall"} & scripts.keys():
            return True
        if (package_json.parent / "binding.gyp").is_file():
            return True
    return False


def _ensure_built(plan: InstallPlan, project_dir: Path, root: Path) -> tuple[Path, bool]:
    """The stored set for ``plan`` (building it now when absent) and whether it was built."""
    key = _key(plan, project_dir)
    final = root / plan.kind / key
    failed = root / plan.kind / f"{key}.failed"
    if (final / "manifest.json").is_file():
        return final, False
    with _locked(root / "locks" / f"{key}.lock"):
        if (final / "manifest.json").is_file():
            return final, False
        if failed.is_file() and time.time() - failed.stat().st_mtime < FAILED_RETRY_AFTER:
            raise CacheUnusable(failed.read_text(encoding="utf-8").strip())
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root / "tmp"))
        try:
            if plan.kind == "python":
                manifest = _build_python(plan, scratch, root)
            else:
                manifest = _build_npm(plan, project_dir, scratch, root)
            (scratch / "tree" / "manifest.json").write_text(json.dumps(manifest))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / "tree", final)  # whole or not at all
        except CacheUnusable as exc:
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(str(exc) + "\n", encoding="utf-8")
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return final, True


def _copy_verified(
    stored: Path, target: Path, manifest: dict[str, object], built_at: str | None
) -> None:
    files = manifest["files"]
    links = manifest["links"]
    assert isinstance(files, dict) and isinstance(links, dict)
    for rel, digest in files.items():
        data = (stored / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise CacheUnusable(f"{rel} differs from the digest recorded when it was built")
        if built_at and (rel.startswith("bin/") or rel == "pyvenv.cfg"):
            data = data.replace(built_at.encode(), str(target).encode())
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        if rel.startswith(("bin/", "node_modules/.bin/")) or os.access(stored / rel, os.X_OK):
            out.chmod(0o755)
        # The stored times, so the byte code compiled at build time stays valid (Python
        # checks a .pyc against its source's mtime; the run cannot write new ones).
        stat = (stored / rel).stat()
        os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    for rel, link in links.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() and not out.is_symlink():
            out.symlink_to(link)


def _shown_in_place(
    stored: Path, target: Path, manifest: dict[str, object], under: str, mount: Mount | None
) -> bool:
    """Mount the set (its ``under`` part) read-only at ``target`` when the sandbox can and
    the set was built to be shown anywhere.  Every stored file is checked first, and nothing
    may have been added: raises :class:`CacheUnusable` when the set is not what was built."""
    if mount is None or not (under or manifest.get("relocatable")):
        return False
    found = _manifest(
        stored, lambda rel: not rel.startswith(under) if under else rel == "manifest.json"
    )
    if found["files"] != manifest["files"] or found["links"] != manifest["links"]:
        raise CacheUnusable("a stored file differs from the digest recorded when it was built")
    return mount(stored / under if under else stored, target)


def _evict(root: Path, kind: str, key: str) -> None:
    """Take a set out of the cache.  Moved aside, not deleted: a run may have it mounted,
    and deleting its files under it would fail an innocent run; what was put aside more
    than a day ago is deleted now."""
    trash = root / "evicted"
    trash.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.replace(root / kind / key, trash / f"{key}-{time.time_ns()}")
    for old in trash.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > EVICTED_KEPT:
                shutil.rmtree(old, ignore_errors=True)


def restore(
    plan: InstallPlan, project_dir: Path, note: Note, mount: Mount | None = None
) -> Restored | None:
    """Give the run ``plan``'s dependency set (read-only in place through ``mount`` when
    the sandbox can, else a copy in the run's copy of the project), building it first when
    the cache is cold; None when the sandbox must install the ordinary way."""
    root = store_dir()
    if root is None or not plan.cacheable or plan.kind not in ("python", "npm"):
        return None
    if plan.kind == "npm" and (project_dir / plan.directory / "node_modules").exists():
        note("dependency cache: the project ships node_modules; npm installs as usual")
        return None
    started = time.monotonic()
    try:
        stored, built = _ensure_built(plan, project_dir, root)
        manifest = json.loads((stored / "manifest.json").read_text(encoding="utf-8"))
        files = len(manifest["files"])
        if plan.kind == "python":
            built_at = manifest.get("built_at")
            venv = project_dir / VENV_DIR
            mounted = _shown_in_place(stored, venv, manifest, "", mount)
            if not mounted:
                _copy_verified(stored, venv, manifest, str(built_at) if built_at else None)
            remaining = None
        else:
            base = project_dir / plan.directory
            rebuild = bool(manifest.get("scripts"))  # npm rebuild writes into node_modules
            mounted = not rebuild and _shown_in_place(
                stored, base / "node_modules", manifest, "node_modules", mount
            )
            if not mounted:
                _copy_verified(stored, base, manifest, None)
            cd = "" if plan.directory == "." else f"cd {plan.directory} && "
            remaining = f"{cd}npm rebuild" if rebuild else None
    except CacheUnusable as exc:
        if "differs from the digest" in str(exc):
            _evict(root, plan.kind, _key(plan, project_dir))
        note(f"dependency cache not used for {plan.source} ({exc}); installing in the sandbox")
        return None
    except (OSError, ValueError) as exc:
        note(f"dependency cache not used for {plan.source} ({type(exc).__name__}: {exc})")
        return None
    how = "mounted read-only" if mounted else "restored"
    how = f"built from the registry and {how}" if built else how
    note(
        f"dependency cache: {files} files of {plan.source} {how} in"
        f" {time.monotonic() - started:.1f} s (each checked against its SHA-256)"
    )
    return Restored(files, built, remaining, mounted)


__all__ = ["CacheUnusable", "Restored", "restore", "store_dir"]

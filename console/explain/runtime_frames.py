"""Which frames are the application's own, for Go, Rust, Ruby, PHP and .NET traces.

``app`` is a project path, or a name: a Go import path (``github.com/org/app``), a Rust
crate (``my_app``), a .NET namespace (``Shop.Api``) or a PHP namespace (``App\\Http``).
Without it every frame that is not library or runtime code is the application's:

* Go: the standard library (import paths without a dot, such as ``net/http``), the module
  cache (``/pkg/mod/``), ``vendor/`` and GOROOT (``/usr/local/go/src``);
* Rust: the toolchain (``/rustc/``, ``.rustup``), ``.cargo/registry`` and ``.cargo/git``,
  and well-known crates (``std``, ``core``, ``tokio``…);
* Ruby: gems, the standard library and version managers' rubies;
* PHP: ``vendor/`` and ``[internal function]``;
* .NET: ``System.*``, ``Microsoft.*`` and common packages.
"""

from __future__ import annotations

import re

from console.explain.appframes import (
    RUNTIMES,
    is_library_path,
    looks_like_path,
    norm_path,
    under,
)
from console.explain.gotraces import go_package
from console.explain.rubytraces import is_ruby_library
from console.explain.rusttraces import rust_crate
from console.model import Failure, Frame

__all__ = ["RUNTIMES", "is_runtime_library", "mark_runtime_frames"]

_RUST_LIBRARY_CRATES = frozenset(
    (
        "std core alloc tokio hyper h2 http futures futures_util futures_core futures_executor "
        "tower tower_http axum actix_web actix_http actix_rt actix_server actix_service warp "
        "rocket serde serde_json reqwest mio tracing tracing_futures anyhow eyre log "
        "env_logger sqlx diesel rayon crossbeam"
    ).split()
)
_DOTNET_LIBRARY_PREFIXES = tuple(
    (
        "System. Microsoft. Newtonsoft. Npgsql. MySql. MySqlConnector. Dapper. Serilog. NLog. "
        "Grpc. Polly. AutoMapper. MediatR. Swashbuckle. FluentValidation. StackExchange. "
        "Castle. Autofac. Hangfire. RabbitMQ. Confluent. Amazon. Azure. Google. Xunit. NUnit. "
        "Moq. Pomelo. Oracle. Mono. "
    ).split()
)
_GO_ROOTS = ("/usr/local/go/src/", "/usr/lib/go/src/", "/usr/lib/golang/src/", "go/src/runtime/")


def _go_library(frame: Frame) -> bool:
    path = norm_path(frame.file or "")
    if any(marker in "/" + path for marker in ("/pkg/mod/", "/vendor/", *_GO_ROOTS)):
        return True
    package = go_package(frame.name)
    first = package.split("/", 1)[0]
    # The standard library's import paths have no dot in their first element.
    return "." not in first and first != "main" and not first.startswith("_")


def _rust_library(frame: Frame) -> bool:
    path = norm_path(frame.file or "").lower()
    markers = ("/rustc/", "/.rustup/", "/.cargo/registry/", "/.cargo/git/", "/rustc-", "/rustlib/")
    if any(marker in "/" + path for marker in markers):
        return True
    if frame.name == "<panic>":
        return not frame.file
    crate = rust_crate(frame.name)
    return crate is None or crate.startswith("_") or crate in _RUST_LIBRARY_CRATES


def _dotnet_library(frame: Frame) -> bool:
    module = frame.module or ""
    return not module or (module + ".").startswith(_DOTNET_LIBRARY_PREFIXES)


def is_runtime_library(frame: Frame, language: str) -> bool:
    """Whether ``frame`` is library or runtime code in a ``language`` trace."""
    if language == "go":
        return _go_library(frame)
    if language == "rust":
        return _rust_library(frame)
    if language == "dotnet":
        return _dotnet_library(frame)
    if not frame.file:
        return True  # PHP "[internal function]"
    if language == "ruby":
        return is_ruby_library(frame.file)
    return "/vendor/" in "/" + norm_path(frame.file) or is_library_path(frame.file, language)


def _named(frame: Frame, language: str, name: str) -> bool | None:
    """Whether ``frame`` belongs to the package ``name``; None when the frame has no package."""
    if language == "go":
        package = go_package(frame.name)
        return package == name or package.startswith(name + "/")
    if language == "rust":
        crate = rust_crate(frame.name)
        return None if crate is None else crate == name.replace("-", "_")
    if language == "dotnet":
        module = frame.module or ""
        return module == name or module.startswith(name + ".")
    if language == "php":
        return frame.name.lstrip("\\").startswith(name.strip("\\") + "\\") or None
    return None


def mark_runtime_frames(failure: Failure, app: str | None = None) -> Failure:
    """Set ``Frame.app`` on a Go, Rust, Ruby, PHP or .NET failure (in place) and return it."""
    language = failure.language
    root: str | None = None
    name: str | None = None
    if app and looks_like_path(app) and not _package_name(app, language):
        root = norm_path(app.rstrip("/\\")) or "/"
    elif app:
        name = app.strip()
    for frame in failure.frames:
        if is_runtime_library(frame, language):
            frame.app = False
        elif root is not None and frame.file:
            frame.app = under(frame.file, root)
        elif name is not None:
            named = _named(frame, language, name)
            frame.app = named if named is not None else _relative(frame)
        else:
            frame.app = True
    return failure


def _package_name(app: str, language: str) -> bool:
    """Whether ``app`` is a Go import path (``github.com/org/app``) or a PHP namespace
    (``App\\Http``), which look like paths but name packages."""
    if app.startswith(("/", ".", "~")) or re.match(r"^[A-Za-z]:", app):
        return False
    if language == "go":
        return "." in app.split("/", 1)[0]
    return language == "php" and "/" not in app and "\\" in app


def _relative(frame: Frame) -> bool:
    """A frame known only by a relative file (a panic location) is the project's own."""
    path = norm_path(frame.file or "")
    return bool(path) and not path.startswith("/") and not re.match(r"^[a-z]:/", path)

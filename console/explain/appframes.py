"""Which frames of a trace are the application's own.

The application is named by a JVM package prefix (``im.toss.teens``) or a project path
(``/srv/app``), or detected: for JVM frames the most common package prefix outside known
libraries, for file paths everything outside virtualenvs, ``node_modules``, the runtime and
the standard library.  Framework-generated proxies are never the application.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from console.model import Failure, Frame

RUNTIMES = frozenset(("go", "rust", "ruby", "php", "dotnet"))

# ------------------------------------------------------------------------------------

_LIBRARY_SEGMENTS = frozenset(
    (
        "site-packages dist-packages .venv venv virtualenv .virtualenvs .tox .nox "
        "__pypackages__ node_modules .pnpm .yarn .npm "
    ).split()
)
_SYSTEM_PREFIXES = tuple(
    (
        "/usr/lib/ /usr/local/lib/ /usr/bin/ /usr/local/bin/ /usr/share/ /opt/homebrew/ "
        "/opt/conda/ /library/frameworks/ /system/ "
    ).split()
)
_NODE_CORE = frozenset(
    (
        "assert async_hooks bootstrap_node buffer child_process cluster console constants "
        "crypto dgram dns domain events fs http http2 https inspector module net os path "
        "perf_hooks process punycode querystring readline repl stream string_decoder timers "
        "tls tty url util v8 vm worker_threads zlib node _stream_readable _stream_writable "
        "_http_server _http_client _http_outgoing _http_incoming _http_common _tls_wrap"
    ).split()
)
_PY_STDLIB = re.compile(r"^python\d*(?:\.\d+)?$")
_JVM_LIBRARY_PREFIXES = tuple(
    (
        "java. javax. jakarta. jdk. sun. com.sun. kotlin. kotlinx. scala. groovy. "
        "org.springframework. org.apache. org.hibernate. org.eclipse. org.jboss. "
        "org.junit. org.gradle. worker.org.gradle. org.slf4j. org.postgresql. "
        "org.mariadb. org.h2. org.flywaydb. org.aspectj. org.mockito. org.codehaus. "
        "org.jetbrains. org.springdoc. org.thymeleaf. org.mybatis. org.redisson. "
        "org.glassfish. org.yaml. org.reactivestreams. ch.qos. com.fasterxml. com.google. "
        "com.zaxxer. com.mysql. com.netflix. com.amazonaws. com.intellij. "
        "software.amazon. io.netty. io.micrometer. io.undertow. io.grpc. io.ktor. "
        "io.vertx. io.r2dbc. io.lettuce. io.opentelemetry. io.sentry. io.swagger. "
        "io.github.resilience4j. io.projectreactor. reactor. net.bytebuddy. okhttp3. "
        "okio. retrofit2. feign. brave. liquibase. redis.clients. akka. "
    ).split()
)
_PROXY_MARKERS = tuple(
    (
        "$$SpringCGLIB$$ $$EnhancerBySpringCGLIB$$ $$FastClassBySpringCGLIB$$ "
        "$$EnhancerByCGLIB$$ $$FastClassByCGLIB$$ $HibernateProxy$ $$_javassist "
        "$ByteBuddy$ $MockitoMock$ "
    ).split()
)


def norm_path(path: str) -> str:
    """``path`` with forward slashes; Windows paths lower-cased (they ignore case)."""
    path = path.replace("\\", "/")
    if re.match(r"^[A-Za-z]:/", path) or path.startswith("//"):
        return path.lower()  # Windows paths compare case-insensitively
    return path


def is_library_path(path: str | None, language: str = "unknown") -> bool:
    """Whether a frame file is library or runtime code rather than the application's."""
    if not path:
        return True
    if path.startswith(("node:", "<", "internal/", "native", "index ", "evalmachine", "webpack")):
        return True
    norm = norm_path(path)
    segments = [s.lower() for s in norm.split("/") if s]
    if any(s in _LIBRARY_SEGMENTS for s in segments):
        return True
    lowered = norm.lower()
    if lowered.startswith(_SYSTEM_PREFIXES):
        return True
    for k in range(len(segments) - 1):
        first, second = segments[k], segments[k + 1]
        if first == "lib" and _PY_STDLIB.match(second):  # /usr/lib/python3.11/
            return True
        if _PY_STDLIB.match(first) and second == "lib" and re.match(r"^python\d+$", first):
            return True  # C:\Python311\Lib\
    if any(s.startswith("node_modules") for s in segments):
        return True  # "node_modules@nestjs" when a Markdown renderer ate the backslash
    if language == "node" and "/" not in norm:
        # Core modules of old Node versions ("net.js:1270:14"); a bundle the app built
        # ("server-bundle.js:4931:30") is the app's own.
        return norm.split(":", 1)[0].removesuffix(".js") in _NODE_CORE
    return False


def is_proxy_frame(frame: Frame) -> bool:
    """Framework-generated proxies (CGLIB, ``<generated>``, JDK proxies) are never the app."""
    module = frame.module or ""
    if frame.file == "<generated>":
        return True
    if any(marker in module for marker in _PROXY_MARKERS):
        return True
    simple = module.rsplit(".", 1)[-1]
    return simple.startswith("$Proxy") or module.startswith("jdk.proxy")


def _is_jvm_library(module: str) -> bool:
    return module.startswith(_JVM_LIBRARY_PREFIXES)


def looks_like_path(app: str) -> bool:
    """Whether ``app`` names a project path rather than a package or namespace."""
    return (
        "/" in app
        or "\\" in app
        or app.startswith((".", "~"))
        or bool(re.match(r"^[A-Za-z]:", app))
    )


def _jvm_group(module: str) -> str:
    package = module.rsplit(".", 1)[0] if "." in module else ""
    parts = package.split(".") if package else []
    depth = 3 if parts[:2] in (["io", "github"], ["com", "github"]) else 2
    return ".".join(parts[:depth])


def _auto_jvm_prefix(frames: Iterable[Frame]) -> str | None:
    """The most common package prefix among non-library, non-proxy JVM frames."""
    counts: Counter[str] = Counter()
    for frame in frames:
        if frame.module and not _is_jvm_library(frame.module) and not is_proxy_frame(frame):
            counts[_jvm_group(frame.module)] += 1
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def under(path: str, root: str) -> bool:
    """Whether ``path`` lies under the normalised ``root`` (relative paths always do)."""
    norm = norm_path(path)
    if not (norm.startswith("/") or re.match(r"^[a-z]:/", norm)):
        return True  # relative paths are relative to the project
    return norm == root or norm.startswith(root + "/")


def mark_app_frames(failure: Failure, app: str | None = None) -> Failure:
    """Set ``Frame.app`` on every frame of ``failure`` (in place) and return it.

    ``app`` is a JVM package prefix (``im.toss.teens``) or a project path (``/srv/app``);
    when it is None the application is detected: for JVM frames the most common package
    prefix outside known libraries, for file paths everything outside virtualenvs,
    ``node_modules``, the runtime and the standard library.
    """
    frames = failure.frames
    lang = failure.language
    if lang in RUNTIMES:
        # Imported here: runtime_frames builds on this module's path helpers.
        from console.explain.runtime_frames import mark_runtime_frames

        return mark_runtime_frames(failure, app)
    jvm = [f for f in frames if f.module]
    prefix: str | None = None
    root: str | None = None
    if app and looks_like_path(app):
        root = norm_path(app.rstrip("/\\")) if app.rstrip("/\\") else "/"
    elif app:
        prefix = app.rstrip(".")
    if jvm and prefix is None:
        prefix = _auto_jvm_prefix(jvm)
    for frame in frames:
        if frame.module is not None:
            if is_proxy_frame(frame) or prefix is None:
                frame.app = False
            elif prefix == "":
                frame.app = "." not in frame.module and not _is_jvm_library(frame.module)
            else:
                frame.app = frame.module == prefix or frame.module.startswith(prefix + ".")
            continue
        if is_library_path(frame.file, lang):
            frame.app = False
        elif root is not None:
            frame.app = under(frame.file or "", root)
        elif prefix is not None:
            # A dotted name given for a Python/Node trace: match it as path segments.
            needle = "/" + prefix.replace(".", "/") + "/"
            frame.app = needle in "/" + norm_path(frame.file or "")
        else:
            frame.app = True
    return failure

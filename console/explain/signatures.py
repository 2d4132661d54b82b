"""Method signatures of app frames whose source is at hand.

Python is parsed with :mod:`ast` (parameters with annotations, return annotation);
JavaScript/TypeScript and Java/Kotlin on a best-effort scan of the lines above the frame.
A signature that cannot be found is omitted, never guessed.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from console.model import Frame

_MAX_SOURCE_BYTES = 2_000_000
_LOOKBACK = 80
# Where a project holds what was installed for it (its virtualenv, ours in a run's copy,
# node_modules) or its VCS data: never its own files.
INSTALLED_DIRS = frozenset({"node_modules", ".venv", "venv", ".verdict-venv", ".git"})
# Where a build writes: copies of sources, not the sources.
BUILD_DIRS = frozenset({"build", "dist", "target", ".gradle"})
_SKIP_DIRS = INSTALLED_DIRS | BUILD_DIRS


@dataclass(frozen=True)
class Param:
    """One parameter: its name and declared type (None when not declared)."""

    name: str
    type: str | None = None


@dataclass(frozen=True)
class Signature:
    """A callable's signature as declared in source."""

    name: str
    params: tuple[Param, ...] = ()
    returns: str | None = None
    line: int | None = None

    def text(self) -> str:
        """``name(a: int, b) -> str`` (one line, language neutral)."""
        params = ", ".join(f"{p.name}: {p.type}" if p.type else p.name for p in self.params)
        tail = f" -> {self.returns}" if self.returns else ""
        return f"{self.name}({params}){tail}"


@dataclass
class SourceLocator:
    """Finds a frame's source file: as given, under the project root, or by JVM package."""

    root: Path | None = None
    _index: dict[str, list[Path]] | None = field(default=None, repr=False)

    def find(self, frame: Frame) -> Path | None:
        """The source file of ``frame``, or None."""
        if not frame.file or frame.file.startswith("<"):
            return None
        given = Path(frame.file.replace("\\", os.sep) if os.sep != "\\" else frame.file)
        if given.is_absolute() and given.is_file():
            return given
        if self.root is None:
            return given if given.is_file() else None
        if not given.is_absolute() and (self.root / given).is_file():
            return self.root / given
        parts = [p for p in re.split(r"[\\/]", frame.file) if p and not p.endswith(":")]
        if frame.module and "." in frame.module:
            # JVM: the package names the directories below a source root.
            package = frame.module.rsplit(".", 1)[0].split(".")
            parts = [*package, parts[-1]] if parts else []
        candidates = self._files().get(parts[-1], []) if parts else []
        best: tuple[int, Path] | None = None
        for candidate in candidates:
            shared = _common_suffix(candidate.parts, parts)
            if best is None or shared > best[0]:
                best = (shared, candidate)
        return best[1] if best else None

    def _files(self) -> dict[str, list[Path]]:
        if self._index is None:
            index: dict[str, list[Path]] = {}
            assert self.root is not None
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
                for name in filenames:
                    index.setdefault(name, []).append(Path(dirpath) / name)
            self._index = index
        return self._index


def _common_suffix(a: tuple[str, ...], b: list[str]) -> int:
    count = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        count += 1
    return count


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_SOURCE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# --- Python ------------------------------------------------------------------------------


def python_signature(source: str, name: str, line: int | None) -> Signature | None:
    """The ``def`` named ``name`` that encloses ``line`` (innermost), via :mod:`ast`."""
    if name == "<module>" or line is None:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            end = node.end_lineno or node.lineno
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if start <= line <= end and (best is None or node.lineno > best.lineno):
                best = node
    if best is None:
        return None
    args = best.args
    params: list[Param] = []
    for arg in [*args.posonlyargs, *args.args]:
        params.append(Param(arg.arg, _unparse(arg.annotation)))
    if args.vararg:
        params.append(Param("*" + args.vararg.arg, _unparse(args.vararg.annotation)))
    for arg in args.kwonlyargs:
        params.append(Param(arg.arg, _unparse(arg.annotation)))
    if args.kwarg:
        params.append(Param("**" + args.kwarg.arg, _unparse(args.kwarg.annotation)))
    prefix = "async " if isinstance(best, ast.AsyncFunctionDef) else ""
    return Signature(prefix + best.name, tuple(params), _unparse(best.returns), best.lineno)


def _unparse(node: ast.expr | None) -> str | None:
    return ast.unparse(node) if node is not None else None


# --- JavaScript / TypeScript -------------------------------------------------------------

_JS_DECLS = [
    re.compile(r"\bfunction\s*\*?\s*(?P<name>[\w$]+)\s*\((?P<params>[^)]*)\)"),
    re.compile(
        r"\b(?P<name>[\w$]+)\s*[:=]\s*(?:async\s+)?(?:function\s*\*?\s*[\w$]*\s*)?"
        r"\((?P<params>[^)]*)\)\s*(?:=>|\{)"
    ),
    re.compile(r"^\s*(?:static\s+)?(?:async\s+)?(?P<name>[\w$]+)\s*\((?P<params>[^)]*)\)\s*\{"),
]
_JS_ANON = re.compile(r"\((?P<params>[^()]*)\)\s*(?:=>|\{)")
_JS_KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "function"}


def js_signature(source: str, name: str, line: int | None) -> Signature | None:
    """The nearest declaration of ``name`` at or above ``line`` (anonymous: any function)."""
    if line is None:
        return None
    simple = re.sub(r"\s*\[as [^\]]+\]$", "", name).split(".")[-1].removeprefix("async ")
    simple = simple.removeprefix("new ")
    lines = source.splitlines()
    if line > len(lines):
        return None  # the source is not the version that ran
    for index in range(min(line, len(lines)) - 1, max(0, line - _LOOKBACK) - 1, -1):
        text = lines[index]
        if simple in ("<anonymous>", ""):
            found = list(_JS_ANON.finditer(text))
            if found and not re.match(r"^\s*(?:if|for|while|switch|catch)\b", text):
                params = _js_params(found[-1]["params"])
                return Signature("<anonymous>", params, None, index + 1)
            continue
        if simple not in text:
            continue
        for pattern in _JS_DECLS:
            match = pattern.search(text)
            if match and match["name"] == simple and simple not in _JS_KEYWORDS:
                return Signature(simple, _js_params(match["params"]), None, index + 1)
    return None


def _js_params(text: str) -> tuple[Param, ...]:
    params = []
    for raw in _split_params(text):
        declared = _top_level_cut(raw, "=")
        name = _top_level_cut(declared, ":")
        typ = declared[len(name) + 1 :].strip() if len(declared) > len(name) else ""
        if name.strip():
            params.append(Param(name.strip(), typ or None))
    return tuple(params)


def _top_level_cut(text: str, stop: str) -> str:
    """``text`` up to the first ``stop`` character outside brackets ("{ a = 1 } = {}")."""
    depth = 0
    for index, char in enumerate(text):
        if char in "<([{":
            depth += 1
        elif char in ">)]}":
            depth -= 1
        elif char == stop and depth == 0 and text[index : index + 2] != "=>":
            return text[:index].strip()
    return text.strip()


def _split_params(text: str) -> list[str]:
    """Split on top-level commas (generics and defaults may hold commas)."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char in "<([{":
            depth += 1
        elif char in ">)]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


# --- Java / Kotlin -----------------------------------------------------------------------


def jvm_signature(source: str, name: str, line: int | None, *, kotlin: bool) -> Signature | None:
    """Best-effort: the declaration of the frame's method nearest above ``line``."""
    method = name.rsplit(".", 1)[-1]
    method = method.split("$", 1)[0] if not method.startswith("lambda$") else method
    if method.startswith("lambda$"):
        method = method.split("$")[1]
    if method in ("<init>", "<clinit>") or not method:
        return None
    lines = source.splitlines()
    if line is not None and line > len(lines):
        return None  # the source is not the version that ran
    last = min(line or len(lines), len(lines))
    if kotlin:
        pattern = re.compile(
            r"\bfun\s+(?:<[^>]*>\s*)?(?:[\w.]+\.)?" + re.escape(method) + r"\s*\((?P<params>.*)"
        )
    else:
        pattern = re.compile(
            r"(?P<ret>[\w.<>\[\]?, ]+?)\s+" + re.escape(method) + r"\s*\((?P<params>.*)"
        )
    for index in range(last - 1, max(0, last - _LOOKBACK * 3) - 1, -1):
        match = pattern.search(lines[index])
        if not match:
            continue
        # Parameters may continue on the next lines; positions on the first line still hold.
        joined = " ".join(lines[index : index + 8])
        inner, rest = _balanced(joined[match.start("params") - 1 :])
        if kotlin:
            params = _kotlin_params(inner)
            ret = re.match(r"\s*:\s*([\w.<>?, *\[\]]+?)\s*(?:[={]|$)", rest)
            returns = ret.group(1).strip() if ret else "Unit"
        else:
            params = _java_params(inner)
            words = match["ret"].split()
            returns = words[-1] if words else None
            if returns in ("new", "return", "else"):
                continue
        return Signature(method, params, returns, index + 1)
    return None


def _balanced(text: str) -> tuple[str, str]:
    """(inside the first parenthesis pair, what follows it)."""
    depth = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[1:index], text[index + 1 :]
    return text[1:], ""


def _kotlin_params(text: str) -> tuple[Param, ...]:
    params = []
    for raw in _split_params(text):
        raw = re.sub(r"@\w+(?:\([^)]*\))?\s*", "", raw).strip()
        raw = re.sub(r"^(?:vararg|val|var|crossinline|noinline)\s+", "", raw)
        name, _, typ = raw.partition(":")
        if name.strip():
            params.append(Param(name.strip(), typ.split("=", 1)[0].strip() or None))
    return tuple(params)


def _java_params(text: str) -> tuple[Param, ...]:
    params = []
    for raw in _split_params(text):
        raw = re.sub(r"@\w+(?:\([^)]*\))?\s*", "", raw).replace("final ", "").strip()
        if " " in raw:
            typ, name = raw.rsplit(" ", 1)
            params.append(Param(name.strip(), typ.strip()))
    return tuple(params)


# --- frames ------------------------------------------------------------------------------


def frame_signature(frame: Frame, locator: SourceLocator) -> Signature | None:
    """The signature of ``frame``'s function, when its source can be found and parsed."""
    path = locator.find(frame)
    if path is None:
        return None
    source = _read(path)
    if source is None:
        return None
    suffix = path.suffix.lower()
    if suffix in (".py", ".pyw"):
        return python_signature(source, frame.name, frame.line)
    if suffix in (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx"):
        return js_signature(source, frame.name, frame.line)
    if suffix in (".kt", ".kts", ".java", ".scala", ".groovy"):
        return jvm_signature(source, frame.name, frame.line, kotlin=suffix in (".kt", ".kts"))
    return None


def app_signatures(frames: list[Frame], root: Path | str | None = None) -> list[str | None]:
    """Signature text for each frame (None where unknown); only app frames are looked up."""
    locator = SourceLocator(Path(root) if root else None)
    cache: dict[tuple[str | None, str, int | None], str | None] = {}
    out: list[str | None] = []
    for frame in frames:
        if not frame.app:
            out.append(None)
            continue
        key = (frame.file, frame.name, frame.line)
        if key not in cache:
            signature = frame_signature(frame, locator)
            cache[key] = signature.text() if signature else None
        out.append(cache[key])
    return out

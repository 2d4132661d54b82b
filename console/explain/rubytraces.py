"""Ruby backtraces: the interpreter's own, Rails request logs and exception e-mails.

* ``app.rb:12:in `handler': message (NoMethodError)`` then ``from lib.rb:3:in `call'`` lines;
* the reversed order of Ruby 2.5–2.7 (``Traceback (most recent call last):``, numbered
  ``N: from …`` lines outermost first, the error line last);
* Rails logs: ``NoMethodError (undefined method …):`` above bare ``file:line:in `m'`` lines;
* exception_notification mails: ``A NoMethodError occurred in users#show:``, the message on
  the next line, and a ``Backtrace:`` section further down.

Gems print as ``actionpack (7.1.2) lib/…`` in Rails backtraces; they are library frames.
"""

from __future__ import annotations

import re

from console.explain.tracelines import Block, chain_failure
from console.model import Failure, Frame

# ``file:line:in `method'`` (Ruby 3.4 quotes 'Class#method' instead of `method').
FRAME = re.compile(
    r"^\s*(?:from\s+|\d+: from\s+)?(?P<file>[A-Za-z]:[/\\][^:`']*?|[^\s:`'][^:`']*?)"
    r":(?P<line>\d+):in [`'](?P<name>[^`']*)'(?P<rest>.*)$"
)
REVERSED = re.compile(r"^\s*\d+: from ")
_ON_LINE = re.compile(r"^: (?P<msg>.*) \((?P<exc>[A-Z][\w:]*)\)\s*$")
_RAILS = re.compile(r"^\s*(?P<exc>[A-Z]\w*(?:::[A-Z]\w*)*) \((?P<msg>.*)\):\s*$")
_MAILED = re.compile(r"^\s*An? (?P<exc>[A-Z]\w*(?:::[A-Z]\w*)*) occurred in .*:\s*$")
_MAIL_LOOKBACK = 60


def _mailed_header(lines: list[str], start: int) -> Block | None:
    """``A NoMethodError occurred in …:`` above ``start``, with the message line after it."""
    for j in range(start - 1, max(-1, start - _MAIL_LOOKBACK), -1):
        match = _MAILED.match(lines[j])
        if match:
            message = next((t.strip() for t in lines[j + 1 : start] if t.strip()), "")
            return Block(match["exc"], message)
    return None


def _header_above(lines: list[str], start: int, floor: int) -> Block:
    for j in range(start - 1, max(floor, start - 4) - 1, -1):
        rails = _RAILS.match(lines[j])
        if rails:
            return Block(rails["exc"], rails["msg"].strip())
        if lines[j].strip() and not lines[j].startswith(" "):
            break
    return _mailed_header(lines, start) or Block("RuntimeError")


def _frame(match: re.Match[str], raw: str) -> Frame:
    return Frame(name=match["name"], file=match["file"].strip(), line=int(match["line"]), raw=raw)


def parse_ruby(lines: list[str], start: int, floor: int) -> tuple[Failure, int]:
    """The Ruby error whose first frame line (or error line) is ``lines[start]``."""
    n = len(lines)
    block: Block | None = None
    reversed_frames: list[Frame] = []
    frames: list[Frame] = []
    i = start
    while i < n:
        match = FRAME.match(lines[i])
        if not match:
            break
        frame = _frame(match, lines[i].strip())
        on_line = _ON_LINE.match(match["rest"])
        if on_line and block is None:
            block = Block(on_line["exc"], on_line["msg"].strip())
            frames.append(frame)
        elif REVERSED.match(lines[i]):
            reversed_frames.append(frame)
        else:
            frames.append(frame)
        i += 1
    if block is None:
        block = _header_above(lines, start, floor)
    # Ruby 2.5-2.7 print the outermost frame first and the error line last.
    block.frames = frames + reversed_frames[::-1]
    return chain_failure([block], "ruby"), i


def is_ruby_library(path: str) -> bool:
    """Gems, the standard library and version managers' rubies are not the app."""
    norm = path.replace("\\", "/").lower()
    if re.match(r"^[\w-]+ \([\w.]+\) ", norm) or norm.startswith("[bundle]"):
        return True  # "actionpack (7.1.2) lib/..." in Rails backtraces
    markers = ("/gems/", "/rubies/", "/lib/ruby/", "/.rbenv/", "/.rvm/", "/vendor/bundle/")
    return any(marker in "/" + norm for marker in markers)

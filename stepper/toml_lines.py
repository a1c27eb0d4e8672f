"""Where each key of a TOML file was written, since `tomllib` gives no positions."""

from __future__ import annotations

import re
from pathlib import Path

from stepper.errors import ScenarioError

# Lines with strings blanked out (same length) and comments cut, as the scanner sees.
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*")
_KEY = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?=[=.])""")
_INLINE_TABLE = re.compile(r"\{([^{}]*)\}")
_INNER_KEY = re.compile(r"([A-Za-z0-9_-]+)\s*=")


class KeyLines:
    """Finds the line each key was written on, since tomllib gives no positions.

    Keys are paths: ("top_p",), ("breakpoints", 2) for the third `[[breakpoints]]`
    table or inline table, ("breakpoints", 2, "on_token") for a key inside it.
    """

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str | int, ...], int] = {}
        self.table: tuple[str | int, ...] = ()
        self.counts: dict[tuple[str, ...], int] = {}
        self.array: tuple[str | int, ...] = ()  # the array whose items are being read
        self.depth = 0  # open brackets of a multi-line array
        self.items = 0  # inline tables seen in that array so far
        self.string = ""  # the delimiter of the multi-line string being read
        for number, raw in enumerate(text.splitlines(), 1):
            self._read(number, raw)

    def error(self, keys: tuple[str | int, ...], message: str) -> ScenarioError:
        """A one-line error at the line of `keys`, or of the nearest enclosing key."""
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.lines:
                return ScenarioError(f"{self.path}:{self.lines[keys[:end]]}: {message}")
        return ScenarioError(f"{self.path}: {message}")

    def _read(self, number: int, raw: str) -> None:
        """Index one line of the file."""
        if self.string:
            if self.string in raw:
                self.string = ""
            return
        code = self._code(raw)
        if self.depth:
            self._items(number, code)
        elif header := _HEADER.fullmatch(code):
            self._header(number, header[1], header[2])
        elif key := _KEY.match(code):
            name = raw[key.start(1) : key.end(1)].strip("\"'")
            self._key(number, name, code[key.end() :])

    def _code(self, raw: str) -> str:
        """`raw` with strings blanked and the comment cut; notes an open string."""
        for quotes in ('"""', "'''"):
            if raw.count(quotes) % 2:
                self.string = quotes
                raw = raw[: raw.index(quotes)]
        code = _STRING.sub(lambda m: m[0][0] + "_" * (len(m[0]) - 2) + m[0][0], raw)
        return code.split("#", 1)[0]

    def _header(self, number: int, brackets: str, name: str) -> None:
        """Enter a `[table]` or the next `[[array]]` table."""
        path = tuple(part.strip().strip("\"'") for part in name.split("."))
        if brackets == "[[":
            count = self.counts[path] = self.counts.get(path, -1) + 1
            self.table = (*path, count)
        else:
            self.table = path
        self.lines.setdefault(self.table, number)

    def _key(self, number: int, name: str, rest: str) -> None:
        """Record a key; if its value is an array, read the inline tables in it."""
        path = (*self.table, name)
        self.lines.setdefault(path, number)
        value = rest.lstrip().removeprefix("=").lstrip()
        if value.startswith("["):
            self.array, self.items = path, 0
            self._items(number, value)

    def _items(self, number: int, code: str) -> None:
        """Record the inline tables on one line of an array, and its brackets."""
        for body in _INLINE_TABLE.findall(code):
            item = (*self.array, self.items)
            self.lines.setdefault(item, number)
            for key in _INNER_KEY.findall(body):
                self.lines.setdefault((*item, key), number)
            self.items += 1
        self.depth += code.count("[") - code.count("]")

"""`FILE.story.lock`: every LLM answer the film's prompts came from, and the digest of every line
a speech server spoke, pinned.

TOML, written for review in a diff: one `[[shot]]` table per shot in film order, long text
wrapped at spaces with TOML's line-ending backslash (which joins the lines back exactly), then
one `[[line]]` table per line a server speaks. Each entry is keyed by the digest of the request
that produced it; see docs/expand.md and docs/voices.md. The expansion stage writes the shots,
the speech stage the lines, and each keeps the other's entries as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from storylang import atomic
from storylang.diagnostics import OneLineError

import tomllib

VERSION = 1
WIDTH = 88
_FIELDS = ("id", "where", "key", "base_url", "model", "system_fingerprint", "format", "positive", "negative", "camera")
_LINE_FIELDS = ("id", "where", "key", "voice", "server", "model", "format", "audio")


class LockError(OneLineError):
    pass


@dataclass
class Entry:
    id: str  # the shot
    key: str  # digest of the request
    positive: str
    negative: str = ""
    camera: str = ""
    where: str = ""  # file:line of the shot, for readers of the diff
    base_url: str = ""  # where it was asked (never credentials)
    model: str = ""  # the model id as the server named it in its answer
    system_fingerprint: str = ""
    format: str = "json_schema"  # how the answer was asked for: json_schema, or text when the server refused it


@dataclass
class LineEntry:
    id: str  # the line: its shot's id and its place in the shot ("4:0")
    key: str  # digest of the speech request (the cache key of the line)
    audio: str  # SHA-256 of the bytes the server answered
    where: str = ""  # file:line of the line, for readers of the diff
    voice: str = ""
    server: str = ""  # never credentials
    model: str = ""
    format: str = ""


@dataclass
class Lock:
    entries: dict[str, Entry] = field(default_factory=dict)  # by shot id, in film order
    lines: dict[str, LineEntry] = field(default_factory=dict)  # by line id, in film order

    def find(self, shot_id: str, key: str) -> Entry | None:
        """The entry answering this request: the shot's own, or another shot's with the same request."""
        own = self.entries.get(shot_id)
        if own is not None and own.key == key:
            return own
        return next((e for e in self.entries.values() if e.key == key), None)


def file_line(where, root: Path) -> str:
    """file:line of a place in the script (a film.Where), the file named relative to the film's
    folder: the lock travels with the film."""
    try:
        name = Path(where.file).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        name = Path(where.file).name
    return f"{name}:{where.line}"


def lock_path(script: Path) -> Path:
    return script.with_name(script.name + ".lock")


def read(path: Path) -> Lock:
    if not path.exists():
        return Lock()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LockError(f"{path.name}: not a readable lockfile ({e}); fix it or delete it and run storyc expand") from e
    if data.get("version") != VERSION:
        raise LockError(f"{path.name}: lockfile version {data.get('version')!r}, this storyc reads {VERSION}; "
                        "run storyc expand --refresh")
    lock = Lock()
    names = {f.name for f in fields(Entry)}
    for item in data.get("shot", []):
        if not isinstance(item, dict) or not {"id", "key", "positive"} <= set(item) \
                or not all(isinstance(item.get(k, ""), str) for k in names):
            raise LockError(f"{path.name}: an entry without id, key or positive; run storyc expand --refresh")
        lock.entries[item["id"]] = Entry(**{k: v for k, v in item.items() if k in names})
    for item in data.get("line", []):
        if not isinstance(item, dict) or not {"id", "key", "audio"} <= set(item) \
                or not all(isinstance(item.get(k, ""), str) for k in _LINE_FIELDS):
            raise LockError(f"{path.name}: a line without id, key or audio; delete it and build again")
        lock.lines[item["id"]] = LineEntry(**{k: v for k, v in item.items() if k in _LINE_FIELDS})
    return lock


def write(path: Path, lock: Lock, script_name: str) -> bool:
    """Write the lock atomically; False when the file already holds exactly this."""
    text = dumps(lock, script_name)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic.write_text(path, text)
    return True


def dumps(lock: Lock, script_name: str) -> str:
    out = [f"# The LLM's prompts and the speech servers' answers for {script_name}, pinned: written by",
           "# `storyc expand` and `storyc build`. Commit it beside the script. Each entry is keyed by the digest",
           "# of its request (docs/expand.md, docs/voices.md).",
           f"version = {VERSION}", ""]
    tables = [("shot", e, _FIELDS, ("id", "key", "positive")) for e in lock.entries.values()] \
        + [("line", e, _LINE_FIELDS, ("id", "key", "audio")) for e in lock.lines.values()]
    for kind, e, names, required in tables:
        out.append(f"[[{kind}]]")
        out += [f"{name} = {toml_string(value)}" for name, value in _present(e, names, required).items()]
        out.append("")
    text = "\n".join(out)
    back = tomllib.loads(text)
    if back.get("shot", []) != [_present(e, _FIELDS, ("id", "key", "positive")) for e in lock.entries.values()] \
            or back.get("line", []) != [_present(e, _LINE_FIELDS, ("id", "key", "audio")) for e in lock.lines.values()]:
        raise AssertionError("lockfile text does not read back")  # a bug in toml_string, never the writer's
    return text


def _present(e, names: tuple[str, ...], required: tuple[str, ...]) -> dict:
    return {k: getattr(e, k) for k in names if getattr(e, k) or k in required}


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(text: str) -> str:
    def one(m: re.Match) -> str:
        c = m.group()
        return _ESCAPES.get(c) or f"\\u{ord(c):04x}"
    return re.sub(r'["\\\x00-\x1f\x7f]', one, text)


def toml_string(text: str) -> str:
    """A TOML basic string; long text as a multi-line string wrapped at single spaces."""
    escaped = _escape(text)
    if len(escaped) <= WIDTH - 20:
        return f'"{escaped}"'
    lines, line = [], ""
    # break only between a space and a non-space: TOML trims the whitespace that starts the next line
    for word in re.split(r"(?<= )(?=\S)", escaped):
        if line and len(line) + len(word) > WIDTH:
            lines.append(line)
            line = ""
        line += word
    lines.append(line)
    return '"""\n' + "\\\n".join(lines) + '"""'

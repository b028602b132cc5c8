"""ScriptFile text → syntax tree, or diagnostics. Never raises on bad input."""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from storylang.diagnostics import Diagnostic, Span, did_you_mean, first_control
from storylang.resources import grammar_path
from storylang.syntax import keywords
from storylang.syntax import tree as t

MAX_BYTES = 32 * 1024 * 1024
MAX_LINE = 20_000  # characters: a longer line is no screenplay's, and would cost its length many times over
_LONG_LINE = re.compile(f"[^\n]{{{MAX_LINE + 1}}}")
MAX_SYNTAX_ERRORS = 25
TAB_WIDTH = 4

KEYS = list(keywords.ALL)  # for "did you mean" on a misspelt statement


def grammar_text() -> str:
    """The grammar, with its KEY terminal made from the one list of statements."""
    return grammar_path().read_text(encoding="utf-8").replace("@KEYWORDS@", keywords.key_pattern())


class _IndentProblem(Exception):
    def __init__(self, line: int, column: int, found: int, levels: list[int]):
        self.line, self.column, self.found, self.levels = line, column, found, levels


def _span(tok: Token) -> Span:
    return Span(line=tok.line, column=tok.column, end_line=tok.end_line, end_column=tok.end_column)


class _Indenter(PostLex):
    """Turns leading whitespace into INDENT/DEDENT tokens placed at the indented line."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.comments: list[tuple[int, int, str, bool]] = []  # (line, column, text, on a line of its own)
        self._statement = False  # a statement's token has been seen: a comment with no line break before it trails one

    def process(self, stream):
        levels = [0]
        last = None
        self._statement = False
        for tok in stream:
            last = tok
            if tok.type != "_NL":
                self._statement = True
                yield tok
                continue
            self._collect_comments(tok)
            yield tok
            indent_str = tok.value.rsplit("\n", 1)[-1] if "\n" in tok.value else ""
            indent = sum(TAB_WIDTH if c == "\t" else 1 for c in indent_str)
            line, column = tok.end_line, len(indent_str) + 1
            pos = tok.end_pos
            if indent > levels[-1]:
                levels.append(indent)
                yield Token("_INDENT", indent_str, pos, line, column, line, column, pos)
            else:
                open_levels = list(levels)
                while indent < levels[-1]:
                    levels.pop()
                    yield Token("_DEDENT", "", pos, line, column, line, column, pos)
                if indent != levels[-1]:
                    raise _IndentProblem(line, column, indent, open_levels)
        while len(levels) > 1:
            levels.pop()
            line = last.end_line if last else 1
            column = last.end_column if last else 1
            pos = last.end_pos if last else 0
            yield Token("_DEDENT", "", pos, line, column, line, column, pos)

    def _collect_comments(self, tok: Token) -> None:
        # one pass: lines are counted from the last comment on, never from the token's start
        # (a run of 300,000 comment lines is one token)
        value = tok.value
        line, seen = tok.line, 0
        for m in _COMMENT.finditer(value):
            line += value.count("\n", seen, m.start())
            seen = m.start()
            nl = value.rfind("\n", 0, m.start())
            column = tok.column + m.start() if nl < 0 else m.start() - nl
            # the token's regex allows only blanks between a line break and a comment
            self.comments.append((line, column, m.group().rstrip(), nl >= 0 or not self._statement))


_COMMENT = re.compile(r"//[^\n]*")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


@dataclass
class _Context:
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(
            Diagnostic(severity="error", code=code, message=message, file=self.file, span=span, hint=hint)
        )


def _decode_string(tok: Token, ctx: _Context) -> str:
    body = tok.value[1:-1]
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            else:
                col = tok.column + 1 + i
                ctx.error(
                    "unknown-escape",
                    f'unknown escape "\\{nxt}" in text',
                    Span(line=tok.line, column=col, end_line=tok.line, end_column=col + 2),
                    'write \\\\ for a backslash; the escapes are \\" \\\\ \\n \\t',
                )
                out.append(nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


_KINDS = {
    "STRING": "string",
    "LONG_STRING": "string",
    "NUMBER": "number",
    "DURATION": "duration",
    "AMOUNT": "amount",
    "SIZE": "size",
    "RATE": "rate",
    "WORD": "word",
    "NAME": "name",
    "AT_SIGN": "at",
}


class _Meta:
    __slots__ = ("line", "column", "end_line", "end_column")

    def __init__(self, line: int, column: int, end_line: int, end_column: int):
        self.line, self.column, self.end_line, self.end_column = line, column, end_line, end_column


def _meta_span(meta) -> Span:
    return Span(line=meta.line, column=meta.column, end_line=meta.end_line, end_column=meta.end_column)


class _ToTree:
    """Lark's parse tree → our syntax tree, bottom-up, one method per rule (called with the
    rule's positions and its already converted children). A plain walk with a dispatch table:
    lark's Transformer spends most of its time dispatching, and this runs once per node."""

    RULES = ("key", "clip_skip_key", "setting", "template_setting", "settings", "name", "character", "scene",
             "framing", "cast", "shot", "dialogue", "transition", "start")

    def __init__(self, ctx: _Context):
        self.ctx = ctx
        self._rules = {rule: getattr(self, rule) for rule in self.RULES}
        self._kept = _kept_tokens()

    def transform(self, tree: Tree):
        return self._walk(tree)[0]

    def _walk(self, tree: Tree):
        """(converted node, its positions): a node spans from its first token to its last,
        punctuation included, as lark's propagate_positions would say (which costs more)."""
        children = []
        first = last = None
        for c in tree.children:
            if isinstance(c, Token):
                if first is None:
                    first = c
                last = c
                if c.type in self._kept:
                    children.append(c)
                continue
            value, meta = self._walk(c)
            if meta is not None:
                first = first or meta
                last = meta
            children.append(value)
        meta = _Meta(first.line, first.column, last.end_line, last.end_column) if first is not None else None
        rule = self._rules.get(tree.data)
        return (rule(meta, children) if rule else Tree(tree.data, children)), meta

    def _value(self, tok: Token) -> t.Value:
        if tok.type == "STRING":
            text = _decode_string(tok, self.ctx)
        elif tok.type == "LONG_STRING":
            text = tok.value[3:-3]
        else:
            text = tok.value
        return t.Value(kind=_KINDS[tok.type], text=text, raw=tok.value, span=_span(tok))

    def _values(self, toks) -> tuple[t.Value, ...]:
        return tuple(self._value(x) for x in toks)

    def key(self, meta, children):
        return children[0]

    def clip_skip_key(self, meta, children):
        return ("clip skip", children)

    def setting(self, meta, children):
        key = children[0]
        if isinstance(key, tuple):  # clip skip
            name = key[0]
            key_span = Span(line=meta.line, column=meta.column, end_line=meta.line, end_column=meta.column + 9)
        else:
            name, key_span = str(key), _span(key)
        return t.Setting(key=name, key_span=key_span, values=self._values(children[1:]), span=_meta_span(meta))

    def template_setting(self, meta, children):
        kw, name = children[0], children[1].children[0]
        value = self._value(name) if name.type != "KEY" else t.Value(kind="word", text=name.value, raw=name.value, span=_span(name))
        return t.Setting(key="template", key_span=_span(kw), values=(value,), span=_meta_span(meta))

    def settings(self, meta, children):
        return t.SettingsLine(settings=tuple(children), span=_meta_span(meta))

    def name(self, meta, children):
        return t.CastName(name=" ".join(str(c) for c in children), span=_meta_span(meta))

    def character(self, meta, children):
        name = children[0]
        return t.Character(name=name.name, name_span=name.span, body=tuple(children[1:]), span=_meta_span(meta))

    def scene(self, meta, children):
        heading = children[0]
        text = re.sub(r"\s+", " ", heading.value).strip()
        return t.Scene(heading=text, body=tuple(children[1:]), span=_meta_span(meta))

    def framing(self, meta, children):
        return ("framing", self._values(children))

    def cast(self, meta, children):
        return ("cast", tuple(children))

    def shot(self, meta, children):
        fields: dict = {"span": _meta_span(meta)}
        body = []
        for c in children:
            if isinstance(c, Token) and c.type == "SHOT_NUMBER":
                fields["number"], fields["number_span"] = c.value, _span(c)
            elif isinstance(c, Token) and c.type == "STRING":
                fields["name"] = self._value(c)
            elif isinstance(c, Token) and c.type == "DURATION":
                fields["duration"] = self._value(c)
            elif isinstance(c, tuple):
                fields[c[0]] = c[1]
            else:
                body.append(c)
        fields["body"] = tuple(body)
        # The span of a shot is its header line; its body has spans of its own.
        return t.Shot(**fields)

    def dialogue(self, meta, children):
        name = children[0]
        paren = None
        text, text_span = "", None
        for c in children[1:]:
            if c.type == "PARENTHETICAL":
                paren = c.value[1:-1].strip()
            elif c.type == "LINE_TEXT":
                text, text_span = c.value.strip(), _span(c)
        return t.Dialogue(
            speaker=name.name,
            speaker_span=name.span,
            parenthetical=paren,
            text=text,
            text_span=text_span,
            span=_meta_span(meta),
        )

    def transition(self, meta, children):
        return t.Transition(values=self._values(children), span=_meta_span(meta))

    def start(self, meta, children):
        return tuple(children)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_Indenter(),
        keep_all_tokens=True,  # positions come from the tokens (see _ToTree._walk)
        maybe_placeholders=False,
        cache=_parser_cache(),
    )


def _parser_cache() -> str | bool:
    """Where lark keeps the analysed grammar between runs (building the LALR tables costs about
    40 ms of every command): a file in the user's own cache folder, not a shared temporary one, because lark
    unpickles it. Lark checks the grammar's digest stored inside; without a folder, no cache."""
    import hashlib
    import sys

    import lark

    from storylang.resources import user_cache_dir

    folder = user_cache_dir()
    if folder is None:
        return False
    key = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()[:16]
    return str(folder / f"grammar-{key}-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.cache")


@lru_cache(maxsize=1)
def _kept_tokens() -> frozenset[str]:
    """Token types that stay in the tree: the grammar's named terminals, as lark would keep them
    (not keywords and punctuation written in quotes, nor _UNDERSCORED ones)."""
    text = grammar_text()
    return frozenset(re.findall(r"^([A-Z][A-Z0-9_]*)(?:\.\d+)?\s*:", text, re.M))


# ------------------------------------------------------------------------ decoding


def decode_source(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes → normalised text (UTF-8, no BOM, \\n line ends), or a diagnostic saying why not
    (with the text, when it could be decoded, to show the line in)."""

    def fail(code, message, line=1, column=1, hint=None):
        span = Span(line=line, column=column, end_line=line, end_column=column + 1)
        return None, [Diagnostic(severity="error", code=code, message=message, file=file, span=span, hint=hint)]

    if len(data) > MAX_BYTES:
        return fail("too-large", f"this script is {len(data) // (1024 * 1024)} MB; the limit is {MAX_BYTES // (1024 * 1024)} MB",
                    hint="split the film into several files joined with include")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        column = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        return fail("not-text", "this file is not text (it contains a NUL byte)", line, column,
                    "storylang reads plain-text .story files saved as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = len(data[data.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", "replace")) + 1
        return fail("not-utf8", "this file is not valid UTF-8 text", line, column,
                    "save the script as UTF-8 (most editors offer it under 'Save with encoding')")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    long_line = _LONG_LINE.search(text)
    if long_line:
        line = text.count("\n", 0, long_line.start()) + 1
        return text, fail("line-too-long", f"line {line} is longer than {MAX_LINE:,} characters", line, 1,
                          "no statement needs that much: a prompt is read as a few hundred words")[1]
    at = first_control(text)
    if at >= 0:
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        char = f"U+{ord(text[at]):04X}"
        return text, fail("control-character", f"this script holds the control character {char}", line, column,
                          "remove it: a script is plain text (a terminal or a player could act on it)")[1]
    return text, []


# ------------------------------------------------------------------------ errors

_DESCRIBE = {
    "STRING": 'a "quoted text"',
    "LONG_STRING": 'a """long text"""',
    "NUMBER": "a number",
    "DURATION": "a duration such as 3s or 72f",
    "AMOUNT": "an amount such as 30% or 45deg",
    "SIZE": "a size such as 1280x720",
    "RATE": "a frame rate such as 24fps",
    "SHOT_NUMBER": "a shot number such as 12 or 12A",
    "WORD": "a word",
    "NAME": "a CHARACTER name",
    "KEY": "a statement such as camera, action or narrate",
    "TEMPLATE": '"template"',
    "HEADING": "a scene heading such as EXT. BEACH - DAY",
    "PARENTHETICAL": "a (parenthetical)",
    "LINE_TEXT": "the line of dialogue",
    "_NL": "the end of the line",
    "_INDENT": "an indented line",
    "_DEDENT": "the end of the indented block",
    "$END": "the end of the file",
    "COLON": '":"',
    "MORETHAN": '">"',
    "AT_SIGN": '"@"',
    "SHOT": '"shot"',
    "CHARACTER": '"character"',
    "ON": '"on"',
    "AND": '"and"',
    "COMMA": '","',
    "CLIP": '"clip skip"',
    "SKIP": '"skip"',
}


def _describe_token(tok: Token) -> str:
    if tok.type in ("_NL",):
        return "the end of the line"
    if tok.type == "_INDENT":
        return "an indented line"
    if tok.type == "_DEDENT":
        return "a line with less indentation"
    if tok.type == "$END":
        return "the end of the file"
    text = tok.value if len(tok.value) <= 40 else tok.value[:37] + "..."
    return f'"{text}"'


def _expected_list(expected) -> str:
    names = sorted({_DESCRIBE.get(e, e.lower()) for e in expected if e not in ("_DEDENT",)})
    if not names:
        return ""
    if len(names) > 6:
        names = names[:6] + ["..."]
    return "expected " + ", ".join(names)


def _syntax_diagnostic(e: Exception, text: str, file: str) -> Diagnostic:
    def diag(code, message, line, column, width=1, hint=None):
        span = Span(line=line, column=column, end_line=line, end_column=column + max(width, 1))
        return Diagnostic(severity="error", code=code, message=message, file=file, span=span, hint=hint)

    if isinstance(e, _IndentProblem):
        choices = " or ".join(str(n) for n in e.levels)
        return diag("indentation", f"this line is indented by {e.found}, which lines it up with no block above it",
                    e.line, e.column, hint=f"indent it by {choices} to line it up with the block it belongs to")
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        if ch == '"':
            return diag("unterminated-text", "this text has no closing quote", e.line, e.column,
                        hint='end the text with " on the same line, or use """triple quotes""" for text over several lines')
        if ch == "(":
            return diag("syntax", "a parenthetical belongs between a character's name and the colon", e.line, e.column,
                        hint="write it as MARA (whispering): Not tonight.")
        shown = repr(ch)[1:-1] if not ch.isprintable() else ch
        code = f"U+{ord(ch):04X}" if ch else ""
        allowed = _expected_list(e.allowed or ())
        if ch.isdigit() or ch in "-+.":
            word = re.match(r"[^\s]+", text[e.pos_in_stream :]).group()
            return diag("syntax", f'"{word}" is not a number, duration or amount I understand', e.line, e.column,
                        len(word), hint="durations are written 3s, 2.5s, 500ms or 72f; amounts 30%, 45deg, -6dB or 1.5x")
        return diag("syntax", f'unexpected character "{shown}" ({code})' if code else "unexpected character",
                    e.line, e.column, hint=allowed or None)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = set(e.expected or ())
        line, column = tok.line, tok.column
        width = max(len(tok.value), 1) if tok.type not in ("_NL", "_INDENT", "_DEDENT", "$END") else 1
        if tok.type == "_NL":
            width = 1
        what = _describe_token(tok)
        if tok.value.startswith('"') and tok.type not in ("STRING", "LONG_STRING"):
            return diag("unterminated-text", "this text has no closing quote", line, column,
                        hint='end the text with " on the same line, or use """triple quotes""" for text over several lines')
        if tok.type == "_INDENT":
            return diag("indentation", "this line is indented, but the line above opens no block", line, column,
                        hint="indent only the lines that belong to a character, a scene heading or a shot")
        if tok.type == "SHOT" and "HEADING" in expected:
            return diag("shot-outside-scene", "a shot must belong to a scene", line, column, width,
                        hint="put a scene heading such as EXT. BEACH - DAY above it and indent the shot under it")
        if tok.type == "SHOT":
            return diag("syntax", "a shot cannot be written inside another shot", line, column, width,
                        hint="give this shot the same indentation as the shot above it")
        if tok.type in ("_NL", "$END") and "TEMPLATE" not in expected and expected <= {"WORD", "STRING", "KEY"}:
            return diag("missing-value", "template needs a name", line, column,
                        hint="for example: template hires")
        if tok.type == "WORD" and "KEY" in expected:
            guess = did_you_mean(tok.value, KEYS)
            hint = f'did you mean "{guess}"?' if guess else "statements begin with a word such as camera, action, narrate or steps"
            if tok.value.lower() in ("int", "ext", "est", "int./ext", "i/e"):
                hint = "scene headings are written in capitals and start at the left margin: EXT. BEACH - DAY"
            return diag("unknown-statement", f'unknown statement "{tok.value}"', line, column, width, hint=hint)
        if tok.type in ("WORD", "NAME") and "COLON" in expected:
            return diag("syntax", "a line of dialogue needs a colon after the name", line, column, width,
                        hint="write it as MARA: Not tonight.  (names are one or more CAPITAL words)")
        if tok.type in ("NUMBER", "SHOT_NUMBER") and "DURATION" in expected:
            return diag("syntax", f'"{tok.value}" needs a unit', line, column, width,
                        hint=f"write {tok.value}s for seconds or {tok.value}f for frames, with no space")
        if tok.type == "WORD" and "NAME" in expected:
            return diag("syntax", f'"{tok.value}" is not a character name', line, column, width,
                        hint=f"character names are written in capitals: {tok.value.upper()}")
        if tok.type in ("_NL", "$END") and "COLON" in expected:
            return diag("syntax", "a line of dialogue needs a colon after the name", line, column,
                        hint="write it as MARA: Not tonight.")
        if tok.type == "NAME" and "KEY" in expected and "HEADING" in expected:
            return diag("syntax", f"unexpected {what} at the top level", line, column, width,
                        hint="dialogue goes inside a shot; scene headings start with INT. or EXT.")
        return diag("syntax", f"unexpected {what}", line, column, width, hint=_expected_list(expected) or None)
    if isinstance(e, UnexpectedEOF):
        lines = text.split("\n")
        return diag("syntax", "the file ends in the middle of a statement", len(lines), 1,
                    hint=_expected_list(e.expected or ()) or None)
    return diag("syntax", "this script could not be read", 1, 1)


def _blank_block(lines: list[str], line: int) -> bool:
    """Blank the line and the more-indented lines below it; False if nothing changed."""
    idx = line - 1
    if not (0 <= idx < len(lines)) or not lines[idx].strip():
        return False

    def indent(s: str) -> int:
        return len(s) - len(s.lstrip(" \t"))

    base = indent(lines[idx])
    lines[idx] = ""
    j = idx + 1
    while j < len(lines) and (not lines[j].strip() or indent(lines[j]) > base):
        lines[j] = ""
        j += 1
    return True


# ------------------------------------------------------------------------ entry points


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while a large tree is built.

    Building a tree allocates many long-lived objects, and each collection walks all of them:
    with the collector on, parsing grows worse than linearly (25,000 shots: 19 s instead of 6 s).
    The trees have no reference cycles, so nothing is lost by collecting once afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_text(text: str, file: str) -> tuple[t.Script | None, list[Diagnostic]]:
    """Parse normalised source text. Returns the tree (None if unreadable) and diagnostics.

    After a syntax error the offending statement and its indented block are set aside and
    the rest is parsed again, so independent mistakes are all reported in one run; the tree
    of what remains is then returned with `recovered` set.
    """
    if not text.endswith("\n"):
        text += "\n"
    lines: list[str] | None = None  # split only after an error (3 million short lines cost 150 MB)
    errors: list[Diagnostic] = []
    current = text
    for _ in range(MAX_SYNTAX_ERRORS + 1):
        ctx = _Context(file)
        parser = _parser()
        try:
            indenter = parser.options.postlex
            indenter.comments = []
            raw = parser.parse(current)
            items = _ToTree(ctx).transform(raw)
        except (UnexpectedInput, _IndentProblem) as e:
            d = _syntax_diagnostic(e, current, file)
            errors.append(d)
            line = d.span.line if d.span else 0
            lines = lines if lines is not None else text.split("\n")
            if len(errors) > MAX_SYNTAX_ERRORS or not _blank_block(lines, line):
                break
            current = "\n".join(lines)
            continue
        comments = tuple(t.Comment(c, own, ln, col) for ln, col, c, own in indenter.comments)
        # After syntax errors this is the rest of the script, for the checks that do not depend
        # on what was set aside; it is marked so that nothing treats it as the whole script.
        # the items are validated nodes already; the comments are not validated one by one again
        script = t.Script.model_construct(file=file, items=tuple(items), comments=comments, recovered=bool(errors))
        return script, errors + ctx.diagnostics
    return None, errors


def parse_file(path: Path, display: str | None = None) -> tuple[t.Script | None, list[Diagnostic], str | None]:
    """Read and parse one file. Returns (tree, diagnostics, normalised text)."""
    file = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        reason = e.strerror or str(e)
        return None, [Diagnostic(severity="error", code="unreadable", message=f"cannot read {file}: {reason}", file=file)], None
    text, diags = decode_source(data, file)
    if text is None or diags:
        return None, diags, text
    with paused_gc():
        tree, diags = parse_text(text, file)
    return tree, diags, text

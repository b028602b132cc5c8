"""`storyc lsp`: the language server, over stdio (pygls).

Every change is parsed and resolved at once (analysis.py): syntax, names, vocabulary and
settings given twice are published as the writer types. The dear checks of `storyc check`
(speech lengths, media, graph validation) run after a pause, in a worker thread, and replace
them when they finish, unless the text changed meanwhile. Both read exactly what `check`
reads, under the same trust rules (trust.py): the server opens no file `check` would not, and
asks no server at all.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from storylang import __version__
from storylang.comfy.graphs import GraphMemo
from storylang.diagnostics import Diagnostic, Span
from storylang.lsp import describe
from storylang.lsp.analysis import Analysis, OverlayLoader, analyse, valid_name
from storylang.lsp.complete import complete
from storylang.lsp.models import ServerModels

PAUSE = 0.6  # seconds without a change before the dear checks run
SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "note": lsp.DiagnosticSeverity.Information}
KINDS = {"keyword": lsp.CompletionItemKind.Keyword, "character": lsp.CompletionItemKind.Variable,
         "value": lsp.CompletionItemKind.EnumMember, "voice": lsp.CompletionItemKind.Value,
         "template": lsp.CompletionItemKind.File, "snippet": lsp.CompletionItemKind.Snippet,
         "model": lsp.CompletionItemKind.File}
SYMBOLS = {"scene": lsp.SymbolKind.Namespace, "shot": lsp.SymbolKind.Event, "character": lsp.SymbolKind.Class}


class StoryServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("storyc", __version__)
        self.loader = OverlayLoader()
        self.analyses: dict[Path, Analysis] = {}  # by script: the latest analysis
        self.timings: dict[Path, object] = {}  # by script: the last dear check's timing
        self.versions: dict[Path, int] = {}  # changes seen per script: a dear check of an older one is dropped
        self.published: dict[Path, set[str]] = {}  # the files each script's diagnostics were sent to
        self.dear_checks = os.environ.get("STORYC_LSP_DEAR", "1") != "0"
        # the dear checks run one at a time in a worker thread, with a loader and graphs of their
        # own kept from one to the next: each parses and compiles again only what the edits changed
        self.dear_lock = threading.Lock()
        self.dear_loader = OverlayLoader()
        self.graph_memo = GraphMemo()
        self.models = ServerModels()

    # ------------------------------------------------------------------ documents

    def changed(self, uri: str) -> None:
        """A file's text changed: analyse the scripts that read it (a file a script includes is
        checked as part of that script, not as a film of its own)."""
        path = path_of(uri)
        self.loader.texts[path] = self.workspace.get_text_document(uri).source
        owners = [s for s, a in self.analyses.items() if s != path and str(path) in a.loaded.sources]
        if owners:
            self.analyses.pop(path, None)
        for script in owners or [path]:
            self.versions[script] = self.versions.get(script, 0) + 1
            analysis = analyse(script, self.loader)
            self.analyses[script] = analysis
            self.publish(script, analysis.diagnostics)
            if self.dear_checks:
                self.schedule_dear(script, self.versions[script])

    def publish(self, script: Path, diagnostics: list[Diagnostic]) -> None:
        """Each file's diagnostics to its own URI (an included file's problems go to that file)."""
        by_file: dict[str, list] = {str(script): []}
        for d in diagnostics:
            by_file.setdefault(d.file, []).append(d)
        for gone in self.published.get(script, set()) - set(by_file):
            by_file[gone] = []
        for file, diags in by_file.items():
            lines = self.lines_of(Path(file))
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=from_fs_path(file), diagnostics=[to_lsp(d, lines) for d in diags]))
        self.published[script] = {f for f, ds in by_file.items() if ds}

    def schedule_dear(self, path: Path, version: int) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(PAUSE, lambda: asyncio.ensure_future(self.dear(path, version)))

    async def dear(self, path: Path, version: int) -> None:
        if self.versions.get(path) != version:
            return  # typed again: the next pause checks that text
        texts = dict(self.loader.texts)
        checked = await asyncio.get_running_loop().run_in_executor(None, self.run_dear, path, texts)
        if self.versions.get(path) != version:
            return
        if checked.timing is not None:
            self.timings[path] = checked.timing
        self.publish(path, checked.diagnostics)

    def run_dear(self, path: Path, texts: dict[Path, str]):
        with self.dear_lock:
            self.dear_loader.texts = texts
            return dear_check(path, self.dear_loader, self.graph_memo)

    def lines_of(self, path: Path) -> list[str]:
        text = self.loader.texts.get(path)
        if text is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return []
        return text.split("\n")

    def analysis(self, uri: str) -> Analysis | None:
        path = path_of(uri)
        found = self.analyses.get(path)
        if found is None:  # a file the editor opened that a script includes: analyse its script
            found = next((a for a in self.analyses.values() if str(path) in a.loaded.sources), None)
        return found


def dear_check(path: Path, loader: OverlayLoader, memo: GraphMemo | None = None):
    from storylang.check import check_film

    try:
        return check_film(path, str(path), loader=loader, memo=memo)
    except Exception as e:  # noqa: BLE001 - a check that cannot finish says so at the script, once
        from storylang.check import Checked

        return Checked(None, [Diagnostic(severity="warning", code="check", file=str(path),
                                         message=f"storyc check could not finish: {e}")], {})


server = StoryServer()


# ---------------------------------------------------------------------- the document's life

@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: StoryServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.changed(params.text_document.uri)
    ls.models.refresh(path_of(params.text_document.uri))  # in the background, for completion


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: StoryServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.changed(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: StoryServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.changed(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: StoryServer, params: lsp.DidCloseTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    ls.loader.texts.pop(path, None)  # the file on disk is what counts again


# ---------------------------------------------------------------------- questions

@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" ", '"', ">"]))
def completion(ls: StoryServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    lines = doc.source.split("\n")
    line = lines[params.position.line] if params.position.line < len(lines) else ""
    prefix = line[:char_column(line, params.position.character)]
    analysis = ls.analysis(params.text_document.uri)
    characters = analysis.characters() if analysis else []
    script = path_of(params.text_document.uri)
    known = {"complete": True}

    def server_files(key: str) -> list:
        files, complete_lists = ls.models.files(script, key)
        known["complete"] = complete_lists
        return files

    items = complete(prefix, lines, params.position.line, characters, script.parent, server_files)
    # incomplete while a server's lists are on their way: the editor asks again as the writer types
    return lsp.CompletionList(is_incomplete=not known["complete"], items=[
        lsp.CompletionItem(label=i.label, kind=KINDS.get(i.kind), detail=i.detail or None, insert_text=i.insert)
        for i in items])


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: StoryServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    file, line, column = position_in(ls, params.text_document.uri, params.position)
    text = describe.hover(analysis, file, line, column, ls.timings.get(analysis.path))
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)) if text else None


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: StoryServer, params: lsp.DefinitionParams) -> list[lsp.Location] | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    file, line, column = position_in(ls, params.text_document.uri, params.position)
    included = analysis.include_at(file, line, column)
    if included is not None:
        return [lsp.Location(uri=from_fs_path(str(included)), range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))]
    template = describe.template_file(analysis, file, line, column)
    if template is not None:
        return [lsp.Location(uri=from_fs_path(str(template)), range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))]
    name = analysis.name_at(file, line, column)
    places = [p for p in analysis.places(name) if p.kind == "declaration"] if name else []
    return [location(ls, p.file, p.span) for p in places] or None


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
def references(ls: StoryServer, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    name = analysis.name_at(*position_in(ls, params.text_document.uri, params.position))
    if name is None:
        return None
    keep = params.context.include_declaration
    return [location(ls, p.file, p.span) for p in analysis.places(name) if keep or p.kind != "declaration"]


@server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: StoryServer, params: lsp.PrepareRenameParams):
    analysis = ls.analysis(params.text_document.uri)
    file, line, column = position_in(ls, params.text_document.uri, params.position)
    name = analysis.name_at(file, line, column) if analysis else None
    if name is None:
        return None
    here = next(p for p in analysis.places(name) if p.file == file and p.span.line == line)
    return lsp.PrepareRenamePlaceholder(range=to_range(here.span, ls.lines_of(Path(file))), placeholder=name)


@server.feature(lsp.TEXT_DOCUMENT_RENAME)
def rename(ls: StoryServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
    analysis = ls.analysis(params.text_document.uri)
    name = analysis.name_at(*position_in(ls, params.text_document.uri, params.position)) if analysis else None
    if name is None:
        return None
    new = params.new_name.strip()
    if not valid_name(new):
        raise ValueError(f"{new!r} is not a character's name: capitals, digits, spaces, . ' and -")
    if new != name and new in analysis.characters():
        raise ValueError(f"{new} is already a character of this film")
    changes: dict[str, list[lsp.TextEdit]] = {}
    for p in analysis.places(name):
        changes.setdefault(from_fs_path(p.file), []).append(
            lsp.TextEdit(range=to_range(p.span, ls.lines_of(Path(p.file))), new_text=new))
    return lsp.WorkspaceEdit(changes=changes)


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def symbols(ls: StoryServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return []
    file = str(path_of(params.text_document.uri))
    lines = ls.lines_of(Path(file))

    def symbol(s: dict) -> lsp.DocumentSymbol:
        return lsp.DocumentSymbol(name=s["name"], kind=SYMBOLS[s["kind"]], range=to_range(s["span"], lines),
                                  selection_range=to_range(s["select"], lines),
                                  children=[symbol(c) for c in s["children"]])

    return [symbol(s) for s in analysis.symbols(file)]


@server.feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
def folding(ls: StoryServer, params: lsp.FoldingRangeParams) -> list[lsp.FoldingRange]:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return []
    return [lsp.FoldingRange(start_line=a - 1, end_line=b - 1)
            for a, b in analysis.folds(str(path_of(params.text_document.uri)))]


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: StoryServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    """`storyc fmt`, as one edit of the whole text; nothing while the text does not parse."""
    from storylang.syntax.format import format_script
    from storylang.syntax.parse import parse_text

    doc = ls.workspace.get_text_document(params.text_document.uri)
    tree, diags = parse_text(doc.source, doc.path)
    if tree is None or any(d.severity == "error" for d in diags):
        return []
    formatted = format_script(tree, doc.source)
    if formatted == doc.source:
        return []
    lines = doc.source.split("\n")
    end = lsp.Position(line=len(lines) - 1, character=utf16_len(lines[-1]))
    return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=formatted)]


DID_YOU_MEAN = re.compile(r'did you mean "?([^"?]+)"?\?')


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION)
def code_actions(ls: StoryServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """A hint's "did you mean X?" in one click; an unknown character declared."""
    uri = params.text_document.uri
    out = []
    for d in params.context.diagnostics:
        guess = DID_YOU_MEAN.search(d.message)
        if guess:
            out.append(lsp.CodeAction(title=f"Change to {guess.group(1)}", kind=lsp.CodeActionKind.QuickFix,
                                      diagnostics=[d], is_preferred=True,
                                      edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=d.range,
                                                                                         new_text=guess.group(1))]})))
        unknown = re.match(r"unknown character (.+)$", d.message.split("\n")[0])
        if d.code == "unknown-character" and unknown:
            line = declaration_line(ls.workspace.get_text_document(uri).source)
            insert = lsp.Position(line=line, character=0)
            out.append(lsp.CodeAction(title=f"Declare character {unknown.group(1)}", kind=lsp.CodeActionKind.QuickFix,
                                      diagnostics=[d], edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(
                                          range=lsp.Range(insert, insert),
                                          new_text=f"character {unknown.group(1)}\n\n")]})))
    return out


# ---------------------------------------------------------------------- commands

@server.command("storyc.build")
def build_command(ls: StoryServer, uri: str, *options: str) -> dict:
    """Build the film (the editor's saved files): the CLI's own summary comes back as a message."""
    path = path_of(uri)
    run_build(ls, path, list(options))
    return {"started": str(path)}


@server.command("storyc.previewShot")
def preview_shot(ls: StoryServer, uri: str, line: int) -> dict | None:
    """Build the shot on this line (0-based) alone, as a short film of its own (`storyc build
    --shot`), then open it; its renders and lines are the film's own, so the film reuses them."""
    from storylang.build import shot_preview_path

    path = path_of(uri)
    analysis = ls.analysis(uri)
    shot = analysis.shot_at(str(path), line + 1) if analysis else None
    if shot is None:
        ls.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning,
                                                     message="no shot here: put the cursor in a shot to preview it"))
        return None
    script = analysis.path
    clip = shot_preview_path(script, (shot.id,))
    run_build(ls, script, ["--shot", shot.id],
              lambda: ls.window_show_document(lsp.ShowDocumentParams(uri=from_fs_path(str(clip)), external=True)))
    return {"shot": shot.id, "film": str(clip)}


def run_build(ls: StoryServer, script: Path, options: list[str], then=None) -> None:
    """`storyc build` in the background; its last line as a message, then `then` if it succeeded."""

    def run() -> None:
        proc = subprocess.run([sys.executable, "-m", "storylang.cli", "build", *options, str(script)],
                              capture_output=True, text=True, cwd=script.parent)
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["built"])[-1]
        kind = lsp.MessageType.Info if proc.returncode == 0 else lsp.MessageType.Error
        ls.window_show_message(lsp.ShowMessageParams(type=kind, message=last))
        if proc.returncode == 0 and then is not None:
            then()

    threading.Thread(target=run, daemon=True).start()


@server.command("storyc.openShot")
def open_shot(ls: StoryServer, uri: str, line: int) -> dict | None:
    """The built film, opened at the shot on this line (0-based), as a media fragment (#t=seconds)."""
    analysis = ls.analysis(uri)
    shot = analysis.shot_at(str(path_of(uri)), line + 1) if analysis else None
    start = describe.shot_start(analysis, shot) if shot else None
    if start is None:
        return None
    film, seconds = start
    target = f"{from_fs_path(str(film))}#t={seconds:.3f}"
    ls.window_show_document(lsp.ShowDocumentParams(uri=target, external=True))
    return {"film": str(film), "seconds": seconds}


# ---------------------------------------------------------------------- positions

def path_of(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)).resolve()


def char_column(line: str, utf16: int) -> int:
    """The character index of a UTF-16 column (what LSP counts in)."""
    units = 0
    for i, ch in enumerate(line):
        if units >= utf16:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def utf16_len(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def position_in(ls: StoryServer, uri: str, pos: lsp.Position) -> tuple[str, int, int]:
    """(file, line, column) in the script's terms: from 1, columns in characters."""
    path = path_of(uri)
    lines = ls.lines_of(path)
    line = lines[pos.line] if pos.line < len(lines) else ""
    return str(path), pos.line + 1, char_column(line, pos.character) + 1


def to_range(span: Span, lines: list[str]) -> lsp.Range:
    def at(line: int, column: int) -> lsp.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return lsp.Position(line=max(line - 1, 0), character=utf16_len(text[:max(column - 1, 0)]))

    return lsp.Range(start=at(span.line, span.column), end=at(span.end_line, span.end_column))


def to_lsp(d: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
    span = d.span or Span(line=1, column=1, end_line=1, end_column=1)
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return lsp.Diagnostic(range=to_range(span, lines), message=message, severity=SEVERITY.get(d.severity),
                          code=d.code, source="storyc")


def location(ls: StoryServer, file: str, span: Span) -> lsp.Location:
    return lsp.Location(uri=from_fs_path(file), range=to_range(span, ls.lines_of(Path(file))))


def declaration_line(text: str) -> int:
    """Where a new character declaration goes: before the first character, else before the first scene."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("character ") or re.match(r"(INT\.|EXT\.|INT\./EXT\.|I/E|EST\.)", line):
            return i
    return len(lines)


def main() -> None:
    server.start_io()

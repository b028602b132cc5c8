"""`storyc lsp` end to end: a real LSP client (pytest-lsp) speaks to the server over stdio."""

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "storylang.cli", "lsp"]))
async def client(lsp_client: LanguageClient, tmp_path_factory):
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def project(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    (tmp_path / "ex" / ".git").mkdir()  # the project's top
    return tmp_path / "ex"


def uri(path: Path) -> str:
    return path.resolve().as_uri()


async def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    u = uri(path)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=u, language_id="story", version=1, text=text if text is not None else path.read_text())))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return u


@pytest.mark.asyncio
async def test_diagnostics_as_the_writer_types(client: LanguageClient, project):
    u = await open_doc(client, project / "harbour.story")
    assert [d for d in client.diagnostics[u] if d.severity == lsp.DiagnosticSeverity.Error] == []
    text = (project / "harbour.story").read_text()
    line = text.split("\n").index("  shot 2 wide on IDA 4s")
    col = "  shot 2 wide on IDA 4s".index("IDA")
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=u, version=2),
        content_changes=[lsp.TextDocumentContentChangePartial(
            range=lsp.Range(lsp.Position(line, col), lsp.Position(line, col + 3)), text="IDAA")]))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    errors = [d for d in client.diagnostics[u] if d.severity == lsp.DiagnosticSeverity.Error]
    assert len(errors) == 1 and errors[0].code == "unknown-character"
    assert errors[0].range.start == lsp.Position(line, col) and "did you mean IDA" in errors[0].message
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=u), range=errors[0].range,
        context=lsp.CodeActionContext(diagnostics=errors)))
    titles = [a.title for a in actions]
    assert "Change to IDA" in titles and "Declare character IDAA" in titles


def pos_of(text: str, needle: str, nth: int = 0, offset: int = 0) -> lsp.Position:
    """The position of the `nth` occurrence of `needle` (plus `offset` characters)."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at)
    return lsp.Position(line, at - (text.rfind("\n", 0, at) + 1) + offset)


@pytest.mark.asyncio
async def test_rename_a_character_across_the_film_and_its_bible(client: LanguageClient, project):
    film = project / "everything.story"
    text = film.read_text()
    u = await open_doc(client, film)
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, "OLD TOM:", 0, 2),
        context=lsp.ReferenceContext(include_declaration=True)))
    files = {r.uri.rsplit("/", 1)[-1] for r in refs}
    assert files == {"everything.story", "bible.story"} and len(refs) == text.count("OLD TOM") - \
        text.count('"OLD TOM') + 1 - text.count("OLD TOM's")
    prepared = await client.text_document_prepare_rename_async(lsp.PrepareRenameParams(
        text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, "OLD TOM:", 0, 1)))
    assert prepared.placeholder == "OLD TOM"
    edit = await client.text_document_rename_async(lsp.RenameParams(
        text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, "OLD TOM:", 0, 1), new_name="TOMAS"))
    assert set(edit.changes) == {uri(film), uri(project / "bible.story")}
    bible = edit.changes[uri(project / "bible.story")]
    assert [e.new_text for e in bible] == ["TOMAS"] and bible[0].range.start == pos_of(
        (project / "bible.story").read_text(), "OLD TOM")
    # applied, the film resolves with no error: every use was renamed
    for target, edits in edit.changes.items():
        path = Path(target.removeprefix("file://"))
        lines = path.read_text().split("\n")
        for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
            ln = lines[e.range.start.line]
            lines[e.range.start.line] = ln[:e.range.start.character] + e.new_text + ln[e.range.end.character:]
        path.write_text("\n".join(lines))
    from storylang.resolve import resolve_file

    film_model, diags, _ = resolve_file(film)
    assert film_model is not None and not [d for d in diags if d.severity == "error"], diags
    assert "TOMAS" in {c.name for c in film_model.characters}
    with pytest.raises(Exception):
        await client.text_document_rename_async(lsp.RenameParams(
            text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, "MARA (to", 0, 1),
            new_name="mara lower"))


@pytest.mark.asyncio
async def test_definition_hover_symbols_and_folds(client: LanguageClient, project):
    film = project / "everything.story"
    text = film.read_text()
    u = await open_doc(client, film)
    doc = lsp.TextDocumentIdentifier(uri=u)
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=doc, position=pos_of(text, "MARA (to herself)", 0, 1)))
    assert found[0].uri == uri(project / "bible.story")
    assert found[0].range.start == pos_of((project / "bible.story").read_text(), "MARA")
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=doc, position=pos_of(text, '"bible.story"', 0, 3)))
    assert found[0].uri == uri(project / "bible.story")
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=doc, position=pos_of(text, "template hires", 0, 10)))
    assert found[0].uri.endswith("templates/graphs/hires.json.j2")
    # hover: a character, a shot, a camera move
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=doc, position=pos_of(text, "MARA (to herself)", 0, 1)))
    assert "silver braid" in hover.contents.value and "en-us+f3" in hover.contents.value
    assert "mara_v2.safetensors" in hover.contents.value and "mara_reference.png" in hover.contents.value
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=doc, position=pos_of(text, "shot 2A close", 0, 2)))
    assert "**shot 2A**" in hover.contents.value and "template `still`" in hover.contents.value
    assert "prompt: " in hover.contents.value and "- look of MARA:" in hover.contents.value
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=doc, position=pos_of(text, "camera push in fast 40%", 0, 3)))
    assert "**camera push in** (fast, ease-out): the camera moves toward the subject, by 40 %" == hover.contents.value
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc))
    scenes = [s for s in symbols if s.kind == lsp.SymbolKind.Namespace]
    assert scenes[0].name == "EXT. LIGHTHOUSE CLIFF - DAWN"
    assert [c.name for c in scenes[0].children][:3] == ["shot 1 establishing", "shot 2 wide low angle",
                                                         "shot 2A close"]
    folds = await client.text_document_folding_range_async(lsp.FoldingRangeParams(text_document=doc))
    first_scene = text.split("\n").index("EXT. LIGHTHOUSE CLIFF - DAWN")
    assert any(f.start_line == first_scene and f.end_line > first_scene + 10 for f in folds)


@pytest.mark.asyncio
async def test_completion_by_context(client: LanguageClient, project):
    film = project / "harbour.story"
    text = film.read_text()
    edited = text.replace('    TOMAS: Room for one more?', '    camera pu\n    TO\n    TOMAS: Room for one more?', 1)
    u = await open_doc(client, film, edited)

    async def labels(needle: str, offset: int) -> list[str]:
        done = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(edited, needle, 0, offset)))
        return [i.label for i in done.items]

    assert "push in" in await labels("camera pu", 9)
    shot_body = await labels("    TO\n", 6)
    assert {"IDA", "TOMAS", "action", "narrate", "camera"} <= set(shot_body) and "title" not in shot_body
    film_level = await labels('title "Last Ferry"', 0)
    assert {"title", "character", "EXT."} <= set(film_level)
    assert "fisherman" not in film_level
    voices = await labels('voice "en-us+f2"', 7)
    assert "en-us" in voices and "en-gb-x-rp" in voices
    assert "en-us+f3" in await labels('voice "en-us+f2"', 13)
    transitions = await labels("> dissolve 0.5s", 2)
    assert {"dissolve", "fade", "wipe", "cut"} <= set(transitions)
    on = await labels("shot 2 wide on IDA 4s", len("shot 2 wide on "))
    assert on == ["IDA", "TOMAS"]


@pytest.mark.asyncio
async def test_formatting_is_storyc_fmt(client: LanguageClient, project):
    film = project / "harbour.story"
    messy = film.read_text().replace("  shot 1 extreme wide 5s", "  shot 1   extreme wide   5s")
    u = await open_doc(client, film, messy)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=u), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert len(edits) == 1 and edits[0].new_text == film.read_text()


@pytest.mark.asyncio
async def test_an_included_files_problem_goes_to_that_file_and_the_dear_checks_follow(client: LanguageClient,
                                                                                       project):
    fine = (project / "bible.story").read_text()
    (project / "bible.story").write_text(fine.replace('voice "en-gb+m3"', 'voice "en-gb+m3" rte 140'))
    film = project / "everything.story"
    u = await open_doc(client, film)
    bible = uri(project / "bible.story")
    while bible not in client.diagnostics:  # each file's diagnostics come in a message of their own
        await asyncio.wait_for(client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 10)
    assert client.diagnostics[bible][0].code == "unknown-option"
    # the writer mends the bible in the editor (unsaved): the film is read with the editor's text
    await open_doc(client, project / "bible.story", fine)
    # the cheap checks are published at once; a line too long for its shot comes after the pause
    long_line = film.read_text().replace("MARA (to herself): Right on time.",
                                         "MARA (to herself): " + "Right on time, as always, every single year. " * 4)
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=u, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=long_line)]))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    for _ in range(20):  # the dear check: its diagnostics replace the cheap ones
        if any("the speech of shot 2A takes" in d.message for d in client.diagnostics.get(u, [])):
            break
        await asyncio.wait_for(client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 60)
    assert list(client.diagnostics[bible]) == []
    assert any("the speech of shot 2A takes" in d.message for d in client.diagnostics[u])


@pytest.mark.asyncio
async def test_the_build_and_open_at_shot_commands(client: LanguageClient, project):
    film = project / "lighthouse.story"
    u = await open_doc(client, film)
    started = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="storyc.build", arguments=[u, "--preview"]))
    assert started["started"] == str(film.resolve())
    for _ in range(600):
        if client.messages:
            break
        await asyncio.sleep(0.1)
    assert client.messages and "written" in client.messages[0].message, client.messages
    assert client.messages[0].type == lsp.MessageType.Info
    # one shot built alone, then opened: a short film of its own beside the film's
    line = film.read_text().split("\n").index("  shot 2 close on MARA 3s")
    previewed = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="storyc.previewShot", arguments=[u, line + 1]))
    assert previewed["shot"] == "2"
    for _ in range(600):
        if client.shown_documents:
            break
        await asyncio.sleep(0.1)
    clip = Path(previewed["film"])
    assert client.shown_documents[-1].uri == clip.as_uri() and clip.parent.parent.name == "shots"
    assert "written" in client.messages[-1].message
    sys.path.insert(0, str(ROOT / "tests"))
    from media import count_frames

    assert count_frames(clip) == 72  # 3 s at 24 fps: the shot alone, no title card, no other shot
    # the full film (not the preview) opens at a shot; built now, from what the builds before drew
    import subprocess

    built = subprocess.run([sys.executable, "-m", "storylang.cli", "build", str(film)], check=True,
                           capture_output=True, text=True)
    assert "0 drawn" in built.stderr + built.stdout
    opened = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="storyc.openShot", arguments=[u, line]))
    assert opened["film"].endswith("lighthouse.mp4") and abs(opened["seconds"] - 7.5) < 1.0
    assert client.shown_documents[-1].uri.endswith(f"#t={opened['seconds']:.3f}")


@pytest.mark.asyncio
async def test_model_files_come_only_from_servers_the_user_trusts(client: LanguageClient, project):
    """`model "` offers the checkpoints, `lora "` the LoRAs of the project's ComfyUI servers, fetched
    in the background; a server that only the project file names is never asked."""
    import os

    sys.path.insert(0, str(ROOT / "tests" / "comfy"))
    from fake_server import FakeComfy

    comfy = FakeComfy(models={"checkpoints": ["dreamshaper_8.safetensors", "sdxl/juggernaut.safetensors"],
                              "loras": ["mara_v2.safetensors"]}).start()
    try:
        (project / "storyc.toml").write_text(f'[comfy]\nservers = ["{comfy.url}"]\n')
        film = project / "harbour.story"
        text = film.read_text().replace('model "dreamshaper_8.safetensors"', 'model "dre', 1)
        text = text.replace("  shot 2 wide on IDA 4s\n", '  shot 2 wide on IDA 4s\n    lora "\n', 1)
        u = await open_doc(client, film, text)

        async def offered(needle: str) -> tuple[dict, bool]:
            done = await client.text_document_completion_async(lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, needle, 0, len(needle))))
            return {i.label: i.detail for i in done.items}, done.is_incomplete

        await asyncio.sleep(0.5)
        assert await offered('model "dre') == ({}, False)  # not trusted: nothing, and nothing asked
        assert comfy.model_lists_asked == 0

        config = Path(os.environ["XDG_CONFIG_HOME"]) / "storyc" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[trust]\nservers = ["{comfy.url}"]\n')  # the user allows it
        for _ in range(50):
            files, incomplete = await offered('model "dre')
            if not incomplete:
                break
            await asyncio.sleep(0.1)
        host = comfy.url.removeprefix("http://").rstrip("/")
        assert files == {"dreamshaper_8.safetensors": f"checkpoint on http://{host}",
                         "sdxl/juggernaut.safetensors": f"checkpoint on http://{host}"}
        assert await offered('    lora "') == ({"mara_v2.safetensors": f"LoRA on http://{host}"}, False)
    finally:
        comfy.stop()


@pytest.mark.asyncio
async def test_hover_describes_what_resolved_while_the_script_has_errors(client: LanguageClient, project):
    """A misspelt cue in shot 7: the other shots and the characters are still described; shot 7
    itself (which did not resolve) is not passed off as the shot above it."""
    film = project / "harbour.story"
    text = film.read_text().replace("    IDA: Fog's coming in early.", "    IDAA: Fog's coming in early.", 1)
    u = await open_doc(client, film, text)
    assert any(d.severity == lsp.DiagnosticSeverity.Error for d in client.diagnostics[u])

    async def hover_at(needle: str, offset: int = 0):
        found = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=u), position=pos_of(text, needle, 0, offset)))
        return found.contents.value if found else None

    assert "**shot 8**" in await hover_at("  shot 8 close on TOMAS 4s", 3)
    assert "old fisherman" in await hover_at("  shot 8 close on TOMAS 4s", len("  shot 8 close on ") + 1)
    assert await hover_at("  shot 7 over the shoulder on IDA 4s", 3) is None
    assert await hover_at("    action \"Ida watches the horizon", 5) is None

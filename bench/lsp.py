"""`storyc lsp` as an editor sees it: a real LSP client starts the server (a subprocess, over
stdio) and times, per keystroke, a didChange (an incremental edit: a character typed into a line,
or, every fifth key, Enter above it, which moves every later scene down) until the diagnostics it
publishes; completion requests until their answer; and, after a pause, the time the dear checks
(speech, media, graphs) take for one edit.

On examples/harbour.story and on a generated 1,000-shot script (bench/parse.py's). Goals:
diagnostics under 100 ms for harbour and under 500 ms for 1,000 shots (the cheap checks, which
come first; the dear ones follow after the pause); completion under 50 ms.
    python bench/lsp.py [--keys N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import make_test_lsp_client

sys.path.insert(0, str(Path(__file__).parent))
from parse import generate  # noqa: E402

from storylang.lsp.server import PAUSE  # noqa: E402

ROOT = Path(__file__).parents[1]


async def measure(path: Path, keys: int) -> dict:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "storylang.cli", "lsp")
    await client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    uri = path.resolve().as_uri()
    text = path.read_text()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="story", version=1, text=text)))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    lines = text.split("\n")
    row = next(i for i, ln in enumerate(lines) if ln.strip().startswith("action "))  # type into an action
    column = len(lines[row]) - 1
    diagnostics, completions, enters = [], [], []
    typed = 0
    for k in range(keys):
        # every fifth key is Enter above the line typed in: a new line, so that every later scene moves down
        enter = k % 5 == 4
        at = lsp.Position(row, 0) if enter else lsp.Position(row, column + typed)
        start = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=k + 2),
            content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(at, at), text="\n" if enter else "x")]))
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        (enters if enter else diagnostics).append(time.perf_counter() - start)
        row, typed = (row + 1, typed) if enter else (row, typed + 1)
        start = time.perf_counter()
        await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(row + 1, 4)))
        completions.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)  # a typist's pace, short of the pause that starts the dear checks
    dear = []
    for k in range(4):  # then a pause after each key: the dear checks run, for what the edit changed
        at = lsp.Position(row, column + typed)
        start = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=keys + k + 2),
            content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(at, at), text="x")]))
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        dear.append(time.perf_counter() - start - PAUSE)  # the first is the whole film's first dear check
        typed += 1
    await client.shutdown_session()
    return {"diagnostics": diagnostics, "enter": enters, "completion": completions, "dear": dear}


def show(name: str, result: dict, goal_ms: float) -> None:
    d, e, c = (sorted(x * 1000 for x in result[k]) for k in ("diagnostics", "enter", "completion"))
    p95 = lambda xs: xs[min(len(xs) - 1, int(len(xs) * 0.95))]  # noqa: E731
    print(f"{name}: keystroke -> diagnostics median {statistics.median(d):.1f} ms, p95 {p95(d):.1f} ms; "
          f"Enter median {statistics.median(e):.1f} ms, p95 {p95(e):.1f} ms (goal {goal_ms:.0f} ms); "
          f"completion median {statistics.median(c):.1f} ms, p95 {p95(c):.1f} ms (goal 50 ms); "
          f"the dear checks after the pause: first {result['dear'][0] * 1000:.0f} ms, "
          f"then median {statistics.median(result['dear'][1:]) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        shutil.copytree(ROOT / "examples", folder / "ex", ignore=shutil.ignore_patterns("build"))
        show("harbour.story (22 shots)", asyncio.run(measure(folder / "ex" / "harbour.story", args.keys)), 100)
        big = folder / "ex" / "big.story"
        big.write_text(generate(1000))
        show("1,000 shots", asyncio.run(measure(big, args.keys)), 500)


if __name__ == "__main__":
    main()

"""The VS Code extension (editors/vscode): its TextMate grammar tokenises every example exactly
as its golden scope files say (vscode-textmate with Oniguruma, as VS Code itself), its
statements are the language's, and it packages as a .vsix with @vscode/vsce."""

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from storylang.syntax import keywords

ROOT = Path(__file__).parents[2]
EXT = ROOT / "editors" / "vscode"
EXAMPLES = sorted((ROOT / "examples").glob("*.story"))

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Node.js and npm are needed to run the extension's tools")


@pytest.fixture(scope="module")
def node_modules():
    """The extension's npm packages, as package-lock.json pins them (.ci/run installs them first)."""
    if not (EXT / "node_modules" / "vscode-textmate").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXT, check=True, capture_output=True, timeout=600)
    return EXT / "node_modules"


def test_every_example_tokenises_as_its_golden_scopes(node_modules):
    proc = subprocess.run(["node", "test/tokenize.mjs", "--check", *map(str, EXAMPLES)], cwd=EXT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"{len(EXAMPLES)} of {len(EXAMPLES)} files" in proc.stdout
    golden = (EXT / "test" / "golden" / "everything.story.scopes").read_text()
    # what a writer sees: headings, statements, cues, parentheticals, strings, durations, comments
    for piece, scope in [('"EXT."', "keyword.other.heading.story"), ('"camera"', "keyword.other.statement.story"),
                         ('"OLD TOM"', "entity.name.tag.character.story"),
                         ('"(to herself)"', "string.other.parenthetical.story"), ('"5s"', "constant.numeric.duration.story"),
                         ('"bible.story"', "string.quoted.double.story"), ('"shot"', "keyword.control.shot.story")]:
        assert any(line.split("\t")[1] == piece and scope in line.split("\t")[2] for line in golden.splitlines()), piece


def test_the_grammar_knows_every_statement_of_the_language():
    grammar = json.loads((EXT / "syntaxes" / "story.tmLanguage.json").read_text())
    pattern = grammar["repository"]["statement"]["patterns"][2]["match"]
    named = set(pattern.split("(", 2)[2].split(")")[0].split("|"))
    assert named == set(keywords.ALL), set(keywords.ALL) ^ named


def test_the_extension_packages_as_a_vsix(node_modules, tmp_path):
    out = tmp_path / "storylang.vsix"
    proc = subprocess.run(["npx", "--no-install", "vsce", "package", "--out", str(out)], cwd=EXT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    names = zipfile.ZipFile(out).namelist()
    for needed in ("extension/package.json", "extension/extension.js", "extension/syntaxes/story.tmLanguage.json",
                   "extension/language-configuration.json", "extension/snippets/story.json",
                   "extension/node_modules/vscode-languageclient/package.json"):
        assert needed in names, needed
    assert not any(n.startswith("extension/test/") or "vscode-textmate" in n for n in names)
    manifest = json.loads(zipfile.ZipFile(out).read("extension/package.json"))
    assert manifest["contributes"]["languages"][0]["extensions"] == [".story"]

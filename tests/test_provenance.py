"""Every output says where it came from: storyc, the script's commit, every file read, per shot."""

import json
import shutil
import subprocess

from click.testing import CliRunner

from storylang.cli import main

from conftest import EXAMPLES


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_a_film_carries_its_commit_its_files_and_its_shots_and_says_when_it_was_edited(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    folder = tmp_path / "ex"
    (folder / ".gitignore").write_text("build/\n")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "x")
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run("build", folder / "everything.story").exit_code == 0
    film = folder / "build" / "everything" / "everything.mp4"
    result = run("provenance", "--json", film)
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert m["git"] == {"commit": head, "dirty": False} and m["script"] == "everything.story"
    assert "bible.story" in m["files"] and "everything.story" in m["files"]
    assert any(name.endswith((".png", ".wav", ".ogg", ".mp4")) for name in m["files"])  # media read too
    assert str(tmp_path) not in result.output  # names relative to the film's folder
    assert all({"seed", "renderer", "picture", "graph", "prompt"} <= set(s) for s in m["shots"].values())
    text = run("provenance", film).output
    assert f"git {head[:12]}" in text and "dirty" not in text
    # an edit not committed: the next film says so
    with (folder / "everything.story").open("a") as fh:
        fh.write("\n// an edit\n")
    assert run("build", folder / "everything.story").exit_code == 0
    assert json.loads(run("provenance", "--json", film).output)["git"] == {"commit": head, "dirty": True}
    assert "(dirty: files differ from it)" in run("provenance", film).output


def test_timelines_boards_and_graphs_carry_it_or_have_it_beside_them(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    script = tmp_path / "ex" / "lighthouse.story"
    outputs = {"otio": tmp_path / "t.otio", "edl": tmp_path / "t.edl", "fcp7": tmp_path / "t.xml"}
    for fmt, out in outputs.items():
        assert run("export", script, "--format", fmt, "-o", out).exit_code == 0
    assert json.loads(outputs["otio"].read_text())["metadata"]["storylang"]["provenance"]["storylang"] == 1
    assert (tmp_path / "t.edl.provenance.json").is_file() and (tmp_path / "t.xml.provenance.json").is_file()
    assert run("board", script, "-o", tmp_path / "b.pdf").exit_code == 0
    assert run("board", script, "-o", tmp_path / "b.html").exit_code == 0
    assert run("graph", script, "-o", tmp_path / "graphs").exit_code == 0
    for out in [*outputs.values(), tmp_path / "b.pdf", tmp_path / "b.html", tmp_path / "graphs" / "index.json"]:
        result = run("provenance", "--json", out)
        assert result.exit_code == 0, (out, result.output)
        assert json.loads(result.output)["files"]["lighthouse.story"]
    graphs = json.loads(run("provenance", "--json", tmp_path / "graphs" / "index.json").output)
    assert all(len(s["graph"]) == 64 for s in graphs["shots"].values())


def test_a_file_without_provenance_is_one_line(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"not a film")
    result = run("provenance", tmp_path / "x.mp4")
    assert result.exit_code == 1 and result.output.startswith("storyc: ") and len(result.output.splitlines()) == 1
    result = run("provenance", EXAMPLES / "lighthouse.story")
    assert result.exit_code == 1 and "no storylang provenance" in result.output


def test_a_script_in_a_subfolder_or_not_yet_committed_is_dirty_when_it_differs(tmp_path):
    repo = tmp_path / "repo"
    (repo / "films").mkdir(parents=True)
    (repo / ".gitignore").write_text("build/\n")
    script = repo / "films" / "short.story"
    script.write_text('format 384x216 @ 24fps\nEXT. A - DAY\n  shot 1 wide 1s\n    action "x"\n')
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x")
    film = repo / "films" / "build" / "short" / "short.mp4"
    assert run("build", script).exit_code == 0
    assert json.loads(run("provenance", "--json", film).output)["git"]["dirty"] is False
    script.write_text(script.read_text().replace('"x"', '"y"'))
    assert run("build", script).exit_code == 0
    assert json.loads(run("provenance", "--json", film).output)["git"]["dirty"] is True
    new = repo / "films" / "new.story"
    new.write_text(script.read_text())
    assert run("build", new).exit_code == 0
    assert json.loads(run("provenance", "--json", repo / "films" / "build" / "new" / "new.mp4").output)["git"]["dirty"]
    timeline = repo / "films" / "build" / "new" / "timeline.json"
    result = run("provenance", timeline)
    assert result.exit_code == 0 and "new.story" in result.output

"""Where a film came from: storyc's version, the script's git commit (and whether its files
were edited since), the digest of every file read, and per shot its seed, renderer, picture,
graph and prompt. The MP4 carries it (its `synopsis` tag), an OTIO timeline and an HTML board
in their metadata; other outputs (EDL, FCP XML, the board's PDF, the graphs' index.json) have
it beside them as `NAME.provenance.json`.
`storyc provenance FILE` prints it back.

Only what the inputs decide goes in (no dates, no machine paths), so a film stays
byte-identical when built twice.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from storylang import __version__, atomic, stamp
from storylang.cache import digest, file_digest
from storylang.diagnostics import OneLineError

VERSION = 1
SIDECAR = ".provenance.json"


class ProvenanceError(OneLineError):
    pass


def git_state(root: Path, files: list[Path]) -> dict | None:
    """The commit of the repository holding the script, and whether any file read differs from it."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    top, head = git("rev-parse", "--show-toplevel"), git("rev-parse", "HEAD")
    if not top or not head:
        return None
    top_dir = Path(top.strip()).resolve()
    inside = [os.path.relpath(f.resolve(), top_dir) for f in files if top_dir in f.resolve().parents]
    # pathspecs are relative to -C's folder: name them from the top (a script in a subfolder was
    # always "clean"); an untracked file read is a difference too
    status = git("-C", str(top_dir), "status", "--porcelain", "--untracked-files=all", "--",
                 *[f":(top){p}" for p in inside]) if inside else ""
    return {"commit": head.strip(), "dirty": status is None or bool(status.strip())}


def manifest(film, script: Path, renderer: str, timeline, build_dir: Path | None, prompts: dict) -> dict:
    root = script.resolve().parent
    files = sorted(stamp.inputs(film, script))
    renders = {}
    if build_dir is not None and (build_dir / "renders.json").is_file() and renderer == "comfy":
        renders = json.loads((build_dir / "renders.json").read_text(encoding="utf-8")).get("shots", {})
    clips = {c.shot: c for c in timeline.clips} if timeline is not None else {}
    shots = {}
    for shot in film.shots:
        clip = clips.get(shot.id)
        expanded = prompts.get(shot.id)
        shots[shot.id] = {
            "seed": shot.render.seed, "renderer": renderer if shot.id not in renders else "comfy",
            "picture": [file_digest(root / f) for f in clip.files] if clip else [],
            "graph": renders.get(shot.id, {}).get("graph"),
            "prompt": f"lock {expanded.key}" if expanded else "script",
        }
    return {"storylang": VERSION, "storyc": __version__, "script": film.script, "git": git_state(root, files),
            "files": {Path(os.path.relpath(f, root)).as_posix(): file_digest(f) for f in files if f.is_file()},
            "timeline": digest(json.loads(timeline.to_json())) if timeline is not None else None, "shots": shots}


def text(m: dict) -> str:
    """The compact JSON an output carries."""
    return json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def manifest_json(m: dict) -> str:
    return json.dumps(m, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_beside(target: Path, m: dict) -> Path:
    side = target.with_name(target.name + SIDECAR)
    atomic.write_text(side, manifest_json(m))
    return side


def read(path: Path, ffmpeg: str) -> dict:
    """The manifest an output carries, or the one beside it."""
    side = path.with_name(path.name + SIDECAR)
    found = None
    if path.suffix.lower() in (".mp4", ".m4v", ".mov"):
        found = _from_mp4(path, ffmpeg)
    elif path.suffix.lower() == ".otio":
        found = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("storylang", {}).get("provenance")
    elif path.suffix.lower() in (".html", ".htm"):
        found = _from_html(path.read_text(encoding="utf-8"))
    elif path.name.endswith(SIDECAR):
        found = json.loads(path.read_text(encoding="utf-8"))
    if found is None and side.is_file():
        found = json.loads(side.read_text(encoding="utf-8"))
    if not isinstance(found, dict) or found.get("storylang") != VERSION:
        raise ProvenanceError(f"{path}: no storylang provenance in it or beside it ({side.name}); "
                              "was it made by storyc?")
    return found


def _from_mp4(path: Path, ffmpeg: str) -> dict | None:
    done = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"], capture_output=True)
    if done.returncode != 0:
        said = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise ProvenanceError(f"{path}: not a film ffmpeg can read ({said[-200:]})")
    for line in _ffmetadata_lines(done.stdout.decode("utf-8", errors="replace")):
        if line.startswith("synopsis="):
            try:
                return json.loads(line[len("synopsis="):])
            except json.JSONDecodeError:
                return None
    return None


def _ffmetadata_lines(text: str) -> list[str]:
    """Logical lines of an ffmetadata file: escapes resolved (a backslash before = ; # \\ or a newline)."""
    out, line, escaped = [], [], False
    for ch in text:
        if escaped:
            line.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "\n":
            out.append("".join(line))
            line = []
        else:
            line.append(ch)
    out.append("".join(line))
    return out


def _from_html(html: str) -> dict | None:
    start = html.find('<script type="application/json" id="storylang-provenance">')
    if start < 0:
        return None
    body = html[html.index(">", start) + 1:html.index("</script>", start)]
    return json.loads(body.replace("<\\/", "</"))


def describe(m: dict) -> str:
    git = m.get("git")
    lines = [f"storyc {m['storyc']}; script {m['script']}"
             + (f"; git {git['commit'][:12]}{' (dirty: files differ from it)' if git['dirty'] else ''}" if git else
                "; not in a git repository"),
             f"timeline sha256:{m['timeline'][:16]}" if m.get("timeline") else "no edit list (graphs only)",
             f"files read ({len(m['files'])}):"]
    lines += [f"  sha256:{d[:16]}  {name}" for name, d in sorted(m["files"].items())]
    lines.append(f"shots ({len(m['shots'])}):")
    for sid, s in m["shots"].items():
        pic = ", ".join(f"sha256:{d[:12]}" for d in s["picture"]) or "-"
        graph = f"  graph sha256:{s['graph'][:12]}" if s.get("graph") else ""
        lines.append(f"  {sid:<6} {s['renderer']:<8} seed {s['seed']:<11} picture {pic}{graph}  prompt: {s['prompt'][:17]}")
    return "\n".join(lines)

"""The edit–look loop on the 22-shot example, measured as a writer meets it, in one run.

    python bench/incremental.py [examples/harbour.story]

Each step runs `storyc` as a user does (a new process: start-up and imports included) on a copy
of the examples: a clean build; a no-op rebuild; three one-shot action edits and three one-line
narration edits (each on another shot); a narration edit that lengthens its shot (reported, no
goal: every later sound sample moves, so the sound after it is encoded again); a transition
change; then `storyc watch --preview` and three saves (each edits another shot), timed from each
save to the new preview film and to the new full film. Goals: no-op under 0.3 s; one-shot action
edit under 15% of the clean build; narration edit under 10%; watch save → preview under 2 s and
→ full film under 4 s. Also: the same clean build with --release (one pass), and the two
pictures' sizes and PSNR against each other (quality per bit of segments vs one pass).

The clean build is timed twice, first and again after the edits (in a fresh copy), and the shares
are of the two's mean: a shared host's load drifts over a run, and one clean build timed at the
start can be a quick or a slow sample for edits timed minutes later.

storylang's modules are byte-compiled first, as `pip install` leaves them (see as_user.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from as_user import STORYC, byte_compiled, storyc

ROOT = Path(__file__).resolve().parent.parent


def edit(script: Path, old: str, new: str) -> None:
    text = script.read_text()
    if old not in text:
        raise SystemExit(f"{script.name} has no {old!r} to edit")
    script.write_text(text.replace(old, new, 1))


def first_match(script: Path, pattern: str) -> str:
    m = re.search(pattern, script.read_text(), re.M)
    if not m:
        raise SystemExit(f"{script.name}: nothing matches {pattern}")
    return m.group(0)


def watch_saves(folder: Path, script: Path, saves: int = 3) -> list[tuple[float, float]]:
    """Seconds from each save to the new preview film and to the new full film, under
    `storyc watch --preview`; each save edits another shot's action (a one-shot edit)."""
    proc = subprocess.Popen([*STORYC, "watch", script.name, "--preview"], cwd=folder, stderr=subprocess.PIPE,
                            text=True, bufsize=1)
    try:
        lines = iter(proc.stderr.readline, "")
        next(lines)  # watching ...
        for _ in range(2):  # the first build: preview, then full (nothing to do but check the cache)
            next(lines)
        times = []
        actions = re.findall(r'action "[^"]+"', script.read_text())
        for action in actions[:saves]:
            time.sleep(1.0)  # the writer reads the film before the next save
            t0 = time.perf_counter()
            edit(script, action, action[:-1] + ' again"')
            preview_line = next(lines)
            t_preview = time.perf_counter() - t0
            full_line = next(lines)
            times.append((t_preview, time.perf_counter() - t0))
            print(f"  watch: {preview_line.strip()}\n  watch: {full_line.strip()}")
        return times
    finally:
        proc.terminate()
        proc.wait(10)


def times(samples: list[float], clean: float) -> str:
    """Seconds and shares of the clean build, one per sample: "2.19 / 2.30 s (8.1 / 8.5%)"."""
    return (" / ".join(f"{t:.2f}" for t in samples) + " s ("
            + " / ".join(f"{t / clean:.1%}".rstrip("%") for t in samples) + "%)")


def psnr(a: Path, b: Path) -> str:
    from storylang.toolchain import find_ffmpeg

    out = subprocess.run([find_ffmpeg().path, "-hide_banner", "-i", str(a), "-i", str(b), "-lavfi",
                          "[0:v][1:v]psnr", "-f", "null", "-"], capture_output=True, text=True).stderr
    m = re.search(r"average:([\d.]+|inf)", out)
    return m.group(1) if m else "?"


def main() -> None:
    byte_compiled()
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "harbour.story"
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "film"
        shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns("build"))
        script = folder / source.name
        env_note = f"{os.cpu_count()} cores"
        clean = storyc("build", script.name, cwd=folder)
        film = folder / "build" / script.stem / f"{script.stem}.mp4"
        segmented = Path(d) / "segmented.mp4"
        shutil.copyfile(film, segmented)
        noop = storyc("build", script.name, cwd=folder)
        actions = []  # three one-shot edits each (on different shots): one sample is too noisy
        for old in re.findall(r'action "[^"]+"', script.read_text())[:3]:
            edit(script, old, 'action "a completely different moment"')
            actions.append(storyc("build", script.name, cwd=folder))
        spoken = []
        for old in re.findall(r'narrate "[^"]+"', script.read_text())[:3]:
            edit(script, old, old[:-1] + ', once more"')
            spoken.append(storyc("build", script.name, cwd=folder))
        # a line that no longer fits its shot: the shot grows, so every later sound sample moves
        longer = re.findall(r'narrate "[^"]+"', script.read_text())[0]  # early: most of the sound
        edit(script, longer, longer[:-1] + ' And then the fog came in over the water, slow and grey."')
        lengthened = storyc("build", script.name, cwd=folder)
        transition = first_match(script, r"^\s+> dissolve[^\n]*")
        edit(script, transition, transition.replace(transition.strip(), "> wipe left 0.5s"))
        trans = storyc("build", script.name, cwd=folder)
        saves = watch_saves(folder, script)
        again_dir = Path(d) / "again"
        shutil.copytree(source.parent, again_dir, ignore=shutil.ignore_patterns("build"))
        again = storyc("build", script.name, cwd=again_dir)
        first, clean = clean, (clean + again) / 2
        release_dir = Path(d) / "release"
        shutil.copytree(source.parent, release_dir, ignore=shutil.ignore_patterns("build"))
        release = storyc("build", script.name, "--release", cwd=release_dir)
        one_pass = release_dir / "build" / script.stem / f"{script.stem}.mp4"
        print(f"{source.name}, {env_note}, storyc run as a user runs it (one process per command):")
        print(f"  clean build        {first:6.2f} s first, {again:.2f} s again after the edits: "
              f"shares are of their mean, {clean:.2f} s")
        print(f"  no-op rebuild      {noop:6.2f} s   (goal < 0.3 s)")
        print(f"  one action edit    {times(actions, clean)} of clean (goal < 15%)")
        print(f"  one narration edit {times(spoken, clean)} of clean (goal < 10%)")
        print(f"  a narration edit that lengthens its shot {lengthened:.2f} s ({lengthened / clean:.1%} of clean; "
              "the sound after it is encoded again)")
        print(f"  a transition       {trans:6.2f} s   {trans / clean:5.1%} of clean")
        previews, fulls = (", ".join(f"{t[k]:.2f}" for t in saves) for k in (0, 1))
        print(f"  watch save -> preview  {previews} s (goal < 2 s)")
        print(f"  watch save -> full film {fulls} s (goal < 4 s), {len(saves)} saves")
        print(f"  --release clean    {release:6.2f} s (one pass)")
        print(f"  picture sizes: segments {segmented.stat().st_size / 1e6:.2f} MB, one pass "
              f"{one_pass.stat().st_size / 1e6:.2f} MB; PSNR between them {psnr(segmented, one_pass)} dB")


if __name__ == "__main__":
    main()

"""Build the 20+ shot example and compare, in one run, against moviepy and the encode floor.

    python bench/build.py [examples/harbour.story]

Prints: the full build from a clean build directory; the same edit list (timeline.json,
the same cards, speech and camera moves) assembled with moviepy, the library most
script-to-video tools use; the encode floor (the finished film's frames encoded once with
the same encoder settings: the least any assembly can cost); a --preview build; a no-op
rebuild. Goals: full build within 1.3x of the floor, at least 6x faster than moviepy,
--preview under 15 s. moviepy is optional: pip install '.[bench]'.

Each storylang step runs `storyc` as a user does (a new process, start-up included), with its
modules byte-compiled first, as `pip install` leaves them (see as_user.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from as_user import byte_compiled, storyc
from storylang.toolchain import find_ffmpeg

ROOT = Path(__file__).resolve().parent.parent
# the cache folders of the picture (one pass, or segments and their joins by scene), the sound and the film
ASSEMBLED = ("picture", "segments", "scenes", "sound", "sound-measures", "sound-pieces", "films")


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def moviepy_assembly(root: Path, timeline: dict, out: Path) -> float | None:
    try:
        from moviepy import AudioFileClip, CompositeAudioClip, CompositeVideoClip, ImageClip, VideoFileClip, vfx
    except ImportError:
        return None
    from storylang.render.camera import shot_views
    from storylang.film import CameraMove

    fps = timeline["fps_num"] / timeline["fps_den"]
    size = (timeline["width"], timeline["height"])

    def work():
        clips = []
        for c in timeline["clips"]:
            start, dur = c["start"] / fps, c["frames"] / fps
            if c["source"] == "video":
                clip = VideoFileClip(str(root / c["files"][0])).subclipped(c["source_in"] / fps).with_duration(dur)
                clip = clip.resized(size)
            else:
                still = ImageClip(str(root / c["files"][0])).with_duration(dur)
                views = shot_views(tuple(CameraMove(**m) for m in c["camera"]), c["frames"], fps, size[0] / size[1])
                w, h = still.size

                def zoom(t, views=views, w=w):
                    return views[min(int(t * fps), len(views) - 1)].zoom * size[0] / w

                clip = still.resized(zoom).with_position("center")
                clip = CompositeVideoClip([clip], size=size).with_duration(dur)
            prev = timeline["clips"][timeline["clips"].index(c) - 1] if clips else None
            if prev and prev.get("transition"):
                clip = clip.with_effects([vfx.CrossFadeIn(prev["transition"]["frames"] / fps)])
            clips.append(clip.with_start(start))
        video = CompositeVideoClip(clips, size=size).with_duration(timeline["frames"] / fps)
        voices = [AudioFileClip(str(root / s["file"])).with_start(s["start"] / fps) for s in timeline["speech"]]
        if voices:
            video = video.with_audio(CompositeAudioClip(voices).with_duration(video.duration))
        video.write_videofile(str(out), fps=fps, codec="libx264", preset="medium", ffmpeg_params=["-crf", "20"],
                              audio_codec="aac", logger=None)

    t, _ = timed(work)
    return t


def encode_floor(film: Path, out: Path) -> float:
    ff = find_ffmpeg().path
    t, _ = timed(lambda: subprocess.run([ff, "-hide_banner", "-loglevel", "error", "-y", "-i", str(film), "-an",
                                         "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-pix_fmt", "yuv420p",
                                         str(out)], check=True))
    return t


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "harbour.story"
    byte_compiled()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d) / "film"
        shutil.copytree(source.parent, work, ignore=shutil.ignore_patterns("build"))
        name, film_dir = source.name, work / "build" / source.stem
        full = storyc("build", name, cwd=work)
        noop = storyc("build", name, cwd=work)
        floor = encode_floor(film_dir / f"{source.stem}.mp4", Path(d) / "floor.mp4")
        shutil.rmtree(work / "build")
        preview = storyc("build", name, "--preview", cwd=work)
        for made in ASSEMBLED:  # what assembly makes; the cards, overlays and voices stay
            shutil.rmtree(work / "build" / "cache" / made, ignore_errors=True)
        rebuilt = storyc("build", name, cwd=work)
        timeline = json.loads((film_dir / "timeline.json").read_text())
        mp = moviepy_assembly(work, timeline, Path(d) / "moviepy.mp4")
    fps = timeline["fps_num"] / timeline["fps_den"]
    print(f"film: {name}, {sum(1 for c in timeline['clips'] if not c['shot'].startswith('#'))} shots, "
          f"{timeline['frames'] / fps:.1f}s, {timeline['width']}x{timeline['height']}")
    print(f"full build (clean):        {full:7.1f} s   {full / floor:5.2f}x the floor   goal <= 1.30x")
    print(f"assembly only (cards and voices cached): {rebuilt:7.1f} s   {rebuilt / floor:5.2f}x the floor")
    print(f"encode floor:              {floor:7.1f} s")
    if mp is None:
        print("moviepy:                   not installed (pip install '.[bench]')")
    else:
        print(f"moviepy, same edit:        {mp:7.1f} s   storyc is {mp / full:4.1f}x faster   goal >= 6x")
    print(f"--preview build (clean):   {preview:7.1f} s   goal < 15 s")
    print(f"no-op rebuild:             {noop:7.2f} s")


if __name__ == "__main__":
    main()

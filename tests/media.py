"""Probing films with the same ffmpeg the project uses (no ffprobe needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from PIL import Image

from storylang.toolchain import find_ffmpeg


def ffmpeg() -> str:
    return find_ffmpeg().path


def info(path: Path) -> str:
    return subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def count_frames(path: Path) -> int:
    out = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    return int(re.findall(r"frame=\s*(\d+)", out)[-1])


def audio_seconds(path: Path) -> float:
    out = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path), "-map", "0:a:0", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    h, m, s = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", out)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def mean_volume(path: Path, start: float, length: float) -> float:
    out = subprocess.run([ffmpeg(), "-hide_banner", "-ss", str(start), "-t", str(length), "-i", str(path),
                          "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"], capture_output=True, text=True).stderr
    m = re.search(r"mean_volume: (-?[\d.]+|-inf) dB", out)
    return float(m.group(1)) if m and m.group(1) != "-inf" else -200.0


def loudness(path: Path) -> float:
    out = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path), "-map", "0:a:0", "-af", "ebur128", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out)[-1])


def frame_at(path: Path, frame: int, fps: float, out: Path) -> Image.Image:
    """The decoded frame number `frame` (selected by number, not by seeking)."""
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-vf",
                    f"select=eq(n\\,{frame})", "-frames:v", "1", "-fps_mode", "passthrough", str(out)], check=True)
    return Image.open(out).convert("RGB")


def gray_frames(path: Path, first: int, last: int) -> list[Image.Image]:
    """Decoded frames first..last (inclusive), as grey images."""
    out = subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-vf",
                          f"select=between(n\\,{first}\\,{last})", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    info_text = info(path)
    w, h = map(int, re.search(r"(\d{2,5})x(\d{2,5})", info_text.split("Video:")[1]).groups())
    size = w * h
    return [Image.frombytes("L", (w, h), out[i:i + size]) for i in range(0, len(out), size)]


def horizontal_shift(a: Image.Image, b: Image.Image, search: int = 16) -> float:
    """How far the picture moved right from a to b, in pixels (column profiles, sub-pixel fit)."""
    def profile(im):
        w, h = im.size
        data = im.tobytes()
        return [sum(data[y * w + x] for y in range(0, h, 2)) for x in range(w)]

    pa, pb = profile(a), profile(b)
    n = len(pa)

    def cost(shift):
        lo, hi = search, n - search
        return sum((pb[x + shift] - pa[x]) ** 2 for x in range(lo, hi)) / (hi - lo)

    costs = {s: cost(s) for s in range(-search, search + 1)}
    best = min(costs, key=costs.get)
    if -search < best < search:
        c0, c1, c2 = costs[best - 1], costs[best], costs[best + 1]
        denom = c0 - 2 * c1 + c2
        return best + (0.5 * (c0 - c2) / denom if denom else 0.0)
    return float(best)

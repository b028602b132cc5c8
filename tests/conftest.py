from pathlib import Path

import pytest

import io
import wave

from PIL import Image


def tiny_wav(seconds: float = 0.5) -> bytes:
    """A real, silent WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return buf.getvalue()


def processes_using(path: Path) -> list[str]:
    """The ids of running processes whose command line names `path` (a stray ffmpeg, say)."""
    import os

    def cmdline(pid: str) -> str:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    return [p for p in os.listdir("/proc") if p.isdigit() and str(path) in cmdline(p)]


def tiny_png(size=(64, 36), color=(90, 120, 160)) -> bytes:
    """A real PNG image."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def write_story(tmp_path):
    """Write a .story file (and optional side files) into a temporary film directory."""

    def write(text: str, name: str = "film.story", **files: bytes) -> Path:
        for rel, data in files.items():
            p = tmp_path / rel.replace("__", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data if isinstance(data, bytes) else data.encode())
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _no_user_trust(tmp_path_factory, monkeypatch):
    """The tests never see the machine user's own storyc config or trust settings."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    for name in ("STORYC_ALLOW_READ", "STORYC_TRUST_SERVERS"):
        monkeypatch.delenv(name, raising=False)

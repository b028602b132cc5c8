from pathlib import Path

import pytest

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

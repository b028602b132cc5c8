"""Where the shipped grammar and templates live, in an installed package and in a checkout."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _package_dir(name: str) -> Path:
    # Installed: pyproject maps the top-level grammar/ and templates/ folders into the package
    # (storylang/grammar, storylang/templates). In a checkout they stay at the top level.
    installed = _PACKAGE / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def grammar_path() -> Path:
    return _package_dir("grammar") / "story.lark"


def templates_dir() -> Path:
    return _package_dir("templates")


def user_cache_dir() -> Path | None:
    """The user's own cache folder for storylang (`$XDG_CACHE_HOME/storylang`, else
    `~/.cache/storylang`), private to the user; None when it cannot be made or written.
    What lives here only saves start-up time: a missing folder costs speed, never correctness."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "storylang"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def template_loader(search: list[str]):
    """A Jinja2 file loader for template folders that never reads outside them: a project's
    template that is a link to a file elsewhere is refused as if it were not there."""
    import jinja2

    class _Confined(jinja2.FileSystemLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            real = os.path.realpath(filename)
            if not any(real.startswith(os.path.realpath(p) + os.sep) for p in self.searchpath):
                raise jinja2.TemplateNotFound(template)
            return source, filename, uptodate

    return _Confined(search)

"""Who may decide what: a script, its project and the user (docs/security.md).

A script and its project's `storyc.toml` may come from a stranger: they may name files inside
the project and servers to use, nothing more. Only the user decides what lies outside the
project and who gets their keys, on the command line, in the environment, or in their own
config (`$XDG_CONFIG_HOME/storyc/config.toml`, outside any repository):

    [trust]
    read = ["~/footage", "/srv/music"]       # folders a script may read besides its project
    servers = ["http://gpu1:8188", "https://llm.example.com/v1"]  # may be sent credentials

Only the standard library here: the loader and the no-op path import it.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tomllib

READ_ENV = "STORYC_ALLOW_READ"  # folders, separated by os.pathsep (the CLI's --allow-read sets it)
SERVERS_ENV = "STORYC_TRUST_SERVERS"  # server URLs, separated by commas or spaces


def project_root(script: Path) -> Path:
    """The folder a script may read: its repository's top (the folder with .git), else its own folder."""
    here = Path(os.path.realpath(script)).parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "storyc" / "config.toml"


@lru_cache(maxsize=4)
def _user_config(path: str, mtime: float) -> dict:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError):
        return {}
    trust = data.get("trust", {})
    return trust if isinstance(trust, dict) else {}


def user_trust() -> dict:
    """The [trust] table of the user's own config, or {} (a damaged file trusts nothing more)."""
    path = user_config_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    return _user_config(str(path), mtime)


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Reads:
    """The folders a script may read from: its project, and what the user allowed."""

    roots: tuple[Path, ...]

    def allows(self, path: Path) -> bool:
        """Whether `path`, with every link followed, lies inside one of the roots."""
        real = Path(os.path.realpath(path))
        return any(real == r or r in real.parents for r in self.roots)

    @property
    def project(self) -> Path:
        return self.roots[0]


def reads_for(script: Path) -> Reads:
    """The project of `script`, then the folders of STORYC_ALLOW_READ and the user's [trust] read."""
    extra = [p for p in os.environ.get(READ_ENV, "").split(os.pathsep) if p]
    extra += _strings(user_trust().get("read"))
    roots = [project_root(script)]
    for p in extra:
        real = Path(os.path.realpath(os.path.expanduser(p)))
        if real not in roots:
            roots.append(real)
    return Reads(tuple(roots))


def outside_hint(reads: Reads) -> str:
    return (f"a script reads only inside its project ({reads.project.name or reads.project}); "
            f"to allow another folder, run storyc with --allow-read DIR")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def trusted_servers(named: tuple[str, ...] = ()) -> set[tuple[str, str, int | None]]:
    """The origins (scheme, host, port) the user allowed: `named` (the command line or the
    environment), STORYC_TRUST_SERVERS and the user's [trust] servers."""
    urls = list(named) + os.environ.get(SERVERS_ENV, "").replace(",", " ").split()
    urls += _strings(user_trust().get("servers"))
    return {_origin(u) for u in urls if u}


def host_token_var(url: str) -> str:
    """STORYC_COMFY_TOKEN_<HOST>: the user's token for one ComfyUI host (setting it allows that host)."""
    import re

    return "STORYC_COMFY_TOKEN_" + re.sub(r"[^A-Za-z0-9]", "_", (urllib.parse.urlsplit(url).hostname or "")).upper()


def server_trusted(url: str, named: tuple[str, ...] = ()) -> bool:
    """Whether credentials may be sent to `url`."""
    return _origin(url) in trusted_servers(named)


def shown_url(url: str) -> str:
    """A server's URL without credentials, for messages, records and the lock."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def api_key(key_env: str, trusted: bool, url: str) -> str | None:
    """The key to send to a server of the OpenAI API: the user's, only to a server they trust;
    "none" where no key is needed (local servers want none, the client wants one); None when
    OpenAI's own server would be asked without one (the caller says which variable to set)."""
    key = os.environ.get(key_env) if trusted else None
    if key:
        return key
    return None if urllib.parse.urlsplit(url).hostname == "api.openai.com" else "none"

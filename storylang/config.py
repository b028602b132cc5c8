"""`storyc.toml`: a project's settings, next to the script or at the root of its repository.

    [comfy]
    servers = ["http://gpu1:8188", "https://box.example.com"]   # the render pool
    inflight = 2      # prompts of ours queued on each server at once
    stall = 300       # seconds without progress before a running shot is given up
    schedule = "models"  # shots that share models back to back on one server ("film": script order)

    [llm]
    model = "llama3.1:8b"                   # the model that expands prompts (docs/expand.md)
    base_url = "http://localhost:11434/v1"  # any OpenAI-compatible server
    key_env = "OPENAI_API_KEY"              # the environment variable holding the key
    timeout = 120                           # seconds per request
    retries = 4                             # for 429, 5xx and timeouts
    book = "promptbook.toml"                # example shot → prompt pairs

The servers come from, first found: `--comfy URL` (repeatable), the `STORYC_COMFY`
environment variable (URLs separated by commas or spaces), the file. Credentials never go
in the file: see docs/comfy.md (`STORYC_COMFY_TOKEN`).
"""

from __future__ import annotations

import os
from pathlib import Path

from storylang import trust
from storylang.diagnostics import OneLineError

import tomllib

NAME = "storyc.toml"
COMFY_KEYS = {"servers": list, "inflight": int, "stall": (int, float), "poll": (int, float), "schedule": str}
LLM_KEYS = {"model": str, "base_url": str, "key_env": str, "timeout": (int, float), "retries": int, "book": str}
TTS_KEYS = {"base_url": str, "model": str, "key_env": str, "timeout": (int, float), "format": str, "instructions": bool}
SECTIONS = {"comfy": COMFY_KEYS, "llm": LLM_KEYS, "tts": TTS_KEYS}
SCHEDULES = ("models", "film")


class ConfigError(OneLineError):
    pass


def find(script: Path) -> Path | None:
    """storyc.toml in the script's folder or a parent, up to the repository root (the folder with .git)."""
    from storylang.stamp import project_config

    return project_config(script)


def load(script: Path) -> dict:
    path = find(script)
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}; fix the file (TOML) or remove it") from e
    for section, keys in SECTIONS.items():
        _check_section(path, section, data.get(section, {}), keys)
    comfy = data.get("comfy", {})
    if comfy.get("schedule", "models") not in SCHEDULES:
        raise ConfigError(f"{path}: [comfy] schedule = {comfy['schedule']!r}; choose one of: {', '.join(SCHEDULES)}")
    return data


def _check_section(path: Path, section: str, values, keys: dict) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{section}] must be a table of settings")
    for key, value in values.items():
        kind = keys.get(key)
        if kind is None:
            raise ConfigError(f"{path}: [{section}] has no setting {key!r} (settings: {', '.join(keys)})")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{path}: [{section}] {key} = {value!r} is not a {getattr(kind, '__name__', 'number')}")


def llm_settings(script: Path) -> tuple[dict, Path | None]:
    """The [llm] settings and the folder of the file that holds them (paths in it are relative to it)."""
    path = find(script)
    if path is None:
        return {}, None
    settings = dict(load(script).get("llm", {}))
    if "base_url" in settings and not settings["base_url"].startswith(("http://", "https://")):
        raise ConfigError(f"{path}: [llm] base_url = {settings['base_url']!r} is not a URL; write http://host:port/v1")
    return settings, path.parent


def comfy_servers(script: Path, flags: tuple[str, ...]) -> tuple[list[str], dict, tuple[str, ...]]:
    """The render pool's URLs, the [comfy] settings of the project file, and the servers that
    may be sent credentials: those the user named (flags, STORYC_COMFY) or allowed (trust.py),
    never one only the project file names."""
    settings = load(script).get("comfy", {})
    if flags:
        servers = list(flags)
    elif os.environ.get("STORYC_COMFY"):
        servers = os.environ["STORYC_COMFY"].replace(",", " ").split()
    else:
        servers = list(settings.get("servers", []))
    for url in servers:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{url!r} is not a server URL; write it as http://host:8188")
    named = tuple(servers) if (flags or os.environ.get("STORYC_COMFY")) else ()
    return servers, settings, tuple(u for u in servers
                                    if trust.server_trusted(u, named) or os.environ.get(trust.host_token_var(u)))

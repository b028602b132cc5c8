"""What is asked of the LLM for one shot: the messages, model, parameters and answer schema.

The request is data: the writer's words reach the model as a JSON object inside the user
message (rendered by a sandboxed Jinja2 template with `tojson`), never spliced into the
instructions. The request's digest is the shot's key in the lockfile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from storylang import vocabulary as vocab
from storylang.cache import digest
from storylang.comfy.prompts import camera_words
from storylang.film import Film, Shot
from storylang.resources import template_loader, templates_dir

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_PARAMETERS = {"temperature": 0.0, "max_tokens": 900}
VIDEO_TEMPLATES = frozenset({"motion", "keyframes", "restyle"})


class ShotPrompt(BaseModel):
    """The answer for one shot: the diffusion prompts, and camera words for video models."""

    model_config = ConfigDict(extra="forbid")
    positive: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)] = Field(
        description="the positive prompt, comma-separated phrases")
    negative: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        description="what the picture must not show")
    camera: Annotated[str, StringConstraints(strip_whitespace=True, max_length=400)] = Field(
        description="camera motion words for video models, empty for stills")


# Keywords strict structured output does not take everywhere; the answer is validated locally anyway.
_LOCAL_ONLY = ("title", "default", "minLength", "maxLength")


def strict_schema(schema: dict) -> dict:
    """A JSON schema as strict structured output wants it: every object's properties all required,
    nothing else allowed, no keywords some servers reject."""
    if isinstance(schema, list):
        return [strict_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items() if k not in _LOCAL_ONLY}
    if "properties" in schema:
        out["properties"] = {k: strict_schema(v) for k, v in schema["properties"].items()}
        out["required"] = sorted(schema["properties"])
        out["additionalProperties"] = False
    return out


def answer_schema(model: type[BaseModel]) -> dict:
    return strict_schema(model.model_json_schema())


def response_format(name: str, model: type[BaseModel]) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": answer_schema(model), "strict": True}}


@dataclass(frozen=True)
class Request:
    """One chat completion request, exactly as sent."""

    model: str
    messages: tuple[dict, ...]
    parameters: dict
    response_format: dict

    def body(self) -> dict:
        return {"model": self.model, "messages": list(self.messages), **self.parameters,
                "response_format": self.response_format}

    @property
    def key(self) -> str:
        """The lock's key: the digest of everything sent (messages, model, parameters, schema)."""
        return digest(self.body())


def message_env(project_templates=None) -> SandboxedEnvironment:
    """The LLM prompt templates (`templates/llm/`; a project's own `templates/llm/` shadows them)."""
    import jinja2  # here, not at the top: a build with nothing to expand never loads it
    from jinja2.sandbox import SandboxedEnvironment

    search = []
    if project_templates is not None and project_templates.is_dir():
        search.append(str(project_templates))
    search.append(str(templates_dir()))
    env = SandboxedEnvironment(loader=template_loader(search), undefined=jinja2.StrictUndefined,
                               keep_trailing_newline=False, autoescape=False)
    # writer text is data: `tojson` gives a plain JSON value (Jinja's own escapes ' and < for HTML,
    # which a model would read as noise)
    env.filters["tojson"] = lambda value: json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)
    return env


def shot_facts(film: Film, shot: Shot) -> dict:
    """The shot as the LLM sees it: everything that decides the picture, in the writer's words."""
    scene = film.scenes[shot.scene]
    framing = vocab.FRAMINGS.get(shot.framing, (shot.framing, ()))[0]
    facts = {
        "scene": scene.heading,
        "framing": framing + (", " + vocab.ANGLES[shot.angle][0] if shot.angle else ""),
        "action": shot.action,
        "characters": [{"name": n, "look": film.character(n).look, "avoid": film.character(n).negative}
                       for n in shot.cast],
        "setting": shot.setting,
        "lighting": shot.lighting,
        "mood": shot.mood,
        "camera": camera_words(shot),
        "style": shot.render.style,
        "negative": shot.render.negative,
        "spoken": [f"{ln.speaker}: {ln.text}" if ln.speaker else f"(narration) {ln.text}" for ln in shot.lines],
        "output": "video" if shot.render.template in VIDEO_TEMPLATES else "image",
        "seconds": round(shot.frames / float(film.fps), 2),
    }
    return {k: v for k, v in facts.items() if v not in ("", [], None)}


def shot_request(film: Film, shot: Shot, env: SandboxedEnvironment, model: str,
                 examples: list[dict] = (), parameters: dict | None = None) -> Request:
    """The request that expands `shot`: system instructions, the prompt book's examples as
    earlier turns, then the shot's facts and the writer's instruction."""
    instruction = shot.expand.instruction if shot.expand else ""
    system = env.get_template("llm/expand.system.j2").render(schema=json.dumps(answer_schema(ShotPrompt)))
    messages = [{"role": "system", "content": system}]
    for ex in examples:
        messages.append({"role": "user", "content": render_user(env, {"action": ex["shot"]}, "")})
        messages.append({"role": "assistant", "content": json.dumps(
            {"positive": ex["positive"], "negative": ex.get("negative", ""), "camera": ex.get("camera", "")},
            ensure_ascii=False)})
    messages.append({"role": "user", "content": render_user(env, shot_facts(film, shot), instruction)})
    return Request(model=model, messages=tuple(messages), parameters=dict(parameters or DEFAULT_PARAMETERS),
                   response_format=response_format("shot_prompt", ShotPrompt))


def render_user(env: SandboxedEnvironment, facts: dict, instruction: str) -> str:
    return env.get_template("llm/expand.user.j2").render(shot=facts, instruction=instruction)

"""The syntax tree: what the writer wrote, as typed nodes with source spans.

The tree keeps every statement in source order (and the comments beside it) so that
`storyc fmt` can print it back; meaning is given to it by the resolver.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Field

from storylang.diagnostics import Span

ValueKind = Literal["string", "number", "duration", "amount", "size", "rate", "word", "name", "at"]


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)

    span: Span


class Value(Node):
    """One argument as written: `kind` says which token it was, `text` is its decoded value."""

    kind: ValueKind
    text: str
    raw: str


class Setting(Node):
    """`key value...`, e.g. `steps 28` or `lora "mara.safetensors" 0.8`."""

    key: str
    key_span: Span
    values: tuple[Value, ...]


class SettingsLine(Node):
    type: Literal["settings"] = "settings"
    settings: tuple[Setting, ...]


class Dialogue(Node):
    type: Literal["dialogue"] = "dialogue"
    speaker: str
    speaker_span: Span
    parenthetical: str | None = None
    text: str
    text_span: Span | None = None


class Transition(Node):
    """`> dissolve 0.5s`: the transition from the shot before it to the shot after it."""

    type: Literal["transition"] = "transition"
    values: tuple[Value, ...]


class CastName(Node):
    name: str


class Shot(Node):
    type: Literal["shot"] = "shot"
    number: str | None = None
    number_span: Span | None = None
    name: Value | None = None
    framing: tuple[Value, ...] = ()
    cast: tuple[CastName, ...] = ()
    duration: Value | None = None
    body: tuple[Annotated[Union[SettingsLine, Dialogue, Transition], Field(discriminator="type")], ...] = ()


class Scene(Node):
    type: Literal["scene"] = "scene"
    heading: str
    body: tuple[Annotated[Union[SettingsLine, Shot, Transition], Field(discriminator="type")], ...] = ()


class Character(Node):
    type: Literal["character"] = "character"
    name: str
    name_span: Span
    body: tuple[SettingsLine, ...] = ()


Item = Annotated[Union[SettingsLine, Character, Scene, Transition], Field(discriminator="type")]


class Comment(NamedTuple):
    """A `//` comment; `own_line` is False for a comment that trails a statement.

    A plain tuple, not a model: a file may hold hundreds of thousands of comments, and each
    must cost what its text does (docs/security.md)."""

    text: str
    own_line: bool
    line: int
    column: int

    @property
    def span(self) -> Span:
        return Span(line=self.line, column=self.column, end_line=self.line, end_column=self.column + len(self.text))


class Script(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = ()
    recovered: bool = False  # statements with syntax errors were left out

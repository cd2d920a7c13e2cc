"""Validation errors as one line per bad field: `mqtt.port: ... (from environment variable X)`.

Pydantic's own report spans several lines per error and echoes every input; a user needs the
option's dotted name, what is wrong with it, where the value came from, and never a secret.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, SecretStr, ValidationError

from har_daemon.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, DaemonConfig
from har_daemon.core.redact import redact_url

Loc = tuple[int | str, ...]

_LONGEST_SHOWN_INPUT = 80


def format_loc(loc: Iterable[int | str]) -> str:
    """`("cameras", 0, "name")` -> `cameras[0].name`, as the TOML file spells it."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _classes_in(annotation: Any) -> Iterator[type]:
    """The classes inside an annotation such as `list[X]`, `X | None`, `Annotated[X, ...]`."""
    if isinstance(annotation, type):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        yield from _classes_in(typing.get_args(annotation)[0])
    elif origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _classes_in(arg)


def unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The section model inside a field's annotation (`list[CameraConfig]` -> CameraConfig)."""
    return next((c for c in _classes_in(annotation) if issubclass(c, BaseModel)), None)


def _model_at(loc: Iterable[int | str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = DaemonConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = unwrap_model(model.model_fields[part].annotation)
    return model


def _is_secret(loc: Loc) -> bool:
    """A field typed `SecretStr`: its input is never shown, not even when it is invalid."""
    parent = _model_at(loc[:-1]) if loc else None
    field = parent.model_fields.get(str(loc[-1])) if parent is not None else None
    return field is not None and any(
        issubclass(c, SecretStr) for c in _classes_in(field.annotation)
    )


def _option_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _env_origin(loc: Loc, env: Mapping[str, str]) -> str | None:
    """The HAR_ variable that set `loc` or a section above it, if one did."""
    names = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    upper_env = {k.upper() for k in env}
    for i in range(len(names), 0, -1):
        var = ENV_PREFIX + ENV_NESTED_DELIMITER.join(map(str, names[:i])).upper()
        if var in upper_env:
            return var
    return None


def _in_overrides(loc: Loc, overrides: Mapping[str, Any] | None) -> bool:
    node: Any = overrides
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(node, Mapping | list):
            return True  # a scalar override covers everything below it
    return True


def _shown_input(loc: Loc, value: Any) -> str | None:
    """The bad value as the line may show it: short, scalar, credentials hidden."""
    if _is_secret(loc):
        return None
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= _LONGEST_SHOWN_INPUT:
        return repr(redact_url(value))
    return None


def _message(err: Mapping[str, Any], loc: Loc) -> str:
    """Pydantic's message, reworded where a config file's author needs other words."""
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        msg = "unknown section" if len(loc) == 1 else "unknown option"
        if parent is not None:
            names = _option_names(parent)
            close = difflib.get_close_matches(str(loc[-1]), names, n=1)
            msg += f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(names)})"
        return msg
    if kind == "missing":
        return "required, but not set"
    if kind == "model_type":
        return "expected a table of options"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind == "list_type" and loc == ("cameras",):
        msg += "; write each camera as a [[cameras]] table"
    return msg


_INPUT_NOT_SHOWN = frozenset(
    {"extra_forbidden", "missing", "model_type", "value_error", "assertion_error"}
)
"""Error types whose line shows no `(got ...)`: there is no input, it is a whole section, or
the validator's message already names it."""


def describe_errors(
    exc: ValidationError,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per problem: `section.field: message`, naming an environment variable or an
    override when the bad value came from one."""
    env = os.environ if env is None else env
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        line = f"{format_loc(loc)}: {_message(err, loc)}"
        shown = None if err["type"] in _INPUT_NOT_SHOWN else _shown_input(loc, err.get("input"))
        if shown is not None:
            line += f" (got {shown})"
        if overrides and _in_overrides(loc, overrides):
            line += " (from a command-line override)"
        else:
            var = _env_origin(loc, env)
            if var is not None:
                line += f" (from environment variable {var})"
        lines.append(line)
    return lines

"""Read an instance file (YAML or JSON) into a validated :class:`~optimizer.input.schema.Instance`.

Parsing, schema validation and cross-entity checks each report every problem
they find, as :class:`~optimizer.errors.InputError` naming the file and the
field path; nothing is half-loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from optimizer.errors import FieldError, InputError
from optimizer.input.schema import Instance
from optimizer.input.validate import check_instance

ModelT = TypeVar("ModelT", bound=BaseModel)


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads ``1e3`` as a number.

    PyYAML follows YAML 1.1, where ``1e3`` is a string; planners write
    scientific notation for FLOP counts and would get a confusing type error.
    """


_FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_StrictYamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_PATTERN, list("-+0123456789.")
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file into plain Python data, or raise InputError."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source, [FieldError("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source, [FieldError("", f"cannot read file: {exc}")]) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise InputError(source, [FieldError("", reason)]) from None
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(source, [FieldError("", f"invalid YAML: {exc}")]) from None


def format_location(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location as a field path over the raw data.

    Segments that are not keys of the raw data (union branch tags such as
    ``training``) are dropped, so the path is the one the user typed; list
    entries carry their id when they have one: ``pools[2](aws-h100).available``.
    """
    parts: list[str] = []
    node = data
    for position, segment in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(segment, int) and isinstance(node, list):
            label = f"[{segment}]"
            entry = node[segment] if 0 <= segment < len(node) else None
            if isinstance(entry, dict):
                name = entry.get("id", entry.get("name"))  # ids; scenarios are named
                if isinstance(name, str):
                    label += f"({name})"
            parts.append(label)
            node = entry
        elif isinstance(node, dict) and segment in node:
            parts.append(f".{segment}")
            node = node[segment]
        elif segment == "[key]":
            parts.append(" (key)")
        elif last:
            parts.append(f".{segment}")
            node = None
        # else: a union branch tag, not part of the user's path
    return "".join(parts).lstrip(".")


def validation_errors(exc: ValidationError, data: Any, schema_command: str = "chipmix schema") -> list[FieldError]:
    """Field errors of a pydantic failure; ``schema_command`` is the command that prints the
    file's schema (an unknown field points there)."""
    errors = []
    for error in exc.errors(include_url=False):
        path = format_location(tuple(error["loc"]), data)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown field (check the spelling; see `{schema_command}`)"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif "input" in error and not isinstance(error["input"], (dict, list)):
            message += f", got {error['input']!r}"
        errors.append(FieldError(path, message, _spelling_hint(error)))
    return errors


def _spelling_hint(error: dict) -> str | None:
    """A choice written in another case or with spaces (``Nvidia``): say which value is meant.
    Choices are case-sensitive on purpose, so a file means one thing everywhere it is read."""
    value = error.get("input")
    if error["type"] != "literal_error" or not isinstance(value, str):
        return None
    meant = value.strip().lower()
    if meant != value and repr(meant) in str(error.get("ctx", {}).get("expected", "")):
        return f"write {meant!r} (choices are lower case)"
    return None


def validate_document(model: type[ModelT], data: Any, source: str, top_level: str = "a mapping of fields",
                      schema_command: str = "chipmix schema") -> ModelT:
    """Validate parsed data into ``model`` (a schema model), or raise InputError with every field path."""
    if not isinstance(data, dict):
        raise InputError(source, [FieldError("", f"the top level must be {top_level}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, validation_errors(exc, data, schema_command)) from None


def instance_from_data(data: Any, source: str = "<instance>") -> Instance:
    """Validate plain data (as parsed from YAML/JSON) into an Instance, or raise InputError."""
    instance = validate_document(Instance, data, source)
    problems = check_instance(instance)
    if problems:
        raise InputError(source, problems)
    return instance


def load_instance(path: str | Path) -> Instance:
    """Load and fully validate an instance file (``.yaml``, ``.yml`` or ``.json``)."""
    return instance_from_data(read_document(path), source=str(path))

"""How simple rows become bodies: the options every row shares (`BodyOptions`), and reading
the `--system` and `--json-schema` options from their files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.chat_types import JsonSchemaFormat as JsonSchemaFormat
from ledger.build.endpoints import COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES
from ledger.errors import InputError


def read_system_option(value: str) -> str:
    """`--system TEXT`, or `--system @FILE` for the text of a UTF-8 file."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--system: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--system: {path}: cannot read ({error})") from None


def read_json_schema(path: str | Path) -> JsonSchemaFormat:
    """`--json-schema FILE`: a JSON Schema, or `{name, schema, strict?, description?}`."""
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"--json-schema: {path}: no such file") from None
    except (OSError, orjson.JSONDecodeError) as error:
        raise InputError(f"--json-schema: {path}: not a JSON file ({error})") from None
    if not isinstance(document, dict):
        raise InputError(f"--json-schema: {path}: must hold a JSON object")
    if isinstance(document.get("schema"), dict) and "name" in document:
        name, schema = document["name"], document["schema"]
        strict, description = document.get("strict", True), document.get("description")
    else:
        name, schema, strict, description = path.stem, document, True, None
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))[:64] or "schema"
    if not isinstance(strict, bool) or not isinstance(description, str | None):
        raise InputError(f"--json-schema: {path}: strict must be true/false, description text")
    _check_schema(path, schema)
    return JsonSchemaFormat(name=name, schema=schema, strict=strict, description=description)


def _check_schema(path: Path, schema: object) -> None:
    """Refuse a schema every answer would be `invalid` against (not a valid JSON Schema): the
    same check normalize makes (`ledger.results.validate`), before anything is sent."""
    from jsonschema import SchemaError, validators  # only a run with a schema pays the import

    if not isinstance(schema, dict):
        raise InputError(f"--json-schema: {path}: the schema must be a JSON object")
    try:
        validators.validator_for(schema, default=validators.Draft202012Validator).check_schema(
            schema
        )
    except SchemaError as error:
        where = error.json_path if error.json_path != "$" else "the schema"
        raise InputError(
            f"--json-schema: {path}: not a valid JSON Schema ({where}: {error.message})"
        ) from None


@dataclass(frozen=True)
class BodyOptions:
    """How simple rows become bodies: endpoint, defaults and output format for every row."""

    endpoint: str = RESPONSES
    model: str | None = None
    system: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    json_mode: bool = False
    json_schema: JsonSchemaFormat | None = None

    def check(self) -> None:
        """Refuse options the endpoint has no use for, or that contradict each other."""
        if self.json_mode and self.json_schema is not None:
            raise InputError("--json and --json-schema: choose one")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise InputError("--max-output-tokens: must be at least 1")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise InputError("--temperature: must be between 0 and 2")
        name = self.endpoint.rsplit("/", 1)[-1]
        if self.endpoint in (EMBEDDINGS, MODERATIONS):
            for option, value in self.shaping_options().items():
                if value:
                    raise InputError(f"{option}: the {name} endpoint has no such parameter")
        if self.endpoint == COMPLETIONS:
            for option in ("--system", "--json", "--json-schema"):
                if self.shaping_options()[option]:
                    raise InputError(f"{option}: the completions endpoint has no such parameter")

    def shaping_options(self) -> dict[str, object]:
        """The options that shape a generated body (they do not apply to ready lines)."""
        return {
            "--system": self.system,
            "--max-output-tokens": self.max_output_tokens,
            "--temperature": self.temperature,
            "--json": self.json_mode,
            "--json-schema": self.json_schema,
        }


def text_format_for(options: BodyOptions) -> dict[str, dict[str, Any]] | None:
    """The JSON output format in each endpoint's own words, or None for plain text."""
    if options.json_mode:
        return {"chat": {"type": "json_object"}, "responses": {"type": "json_object"}}
    schema = options.json_schema
    if schema is None:
        return None
    described = {"description": schema.description} if schema.description else {}
    chat = {"name": schema.name, **described, "schema": schema.schema, "strict": schema.strict}
    return {
        "chat": {"type": "json_schema", "json_schema": chat},
        "responses": {"type": "json_schema", **chat},
    }

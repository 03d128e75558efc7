"""Checks a JSON value against the openai SDK's own request param types (TypedDicts, unions,
literals, lists), so tests prove the bodies we write are what the SDK itself would send."""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any, get_args, get_origin

import typing_extensions
from typing_extensions import get_type_hints, is_typeddict

# The SDK declares its params with typing_extensions, which may have its own copies of these.
_WRAPPERS = {
    typing.Required,
    typing.NotRequired,
    typing.Annotated,
    typing_extensions.Required,
    typing_extensions.NotRequired,
    typing_extensions.Annotated,
}
_LITERALS = {typing.Literal, typing_extensions.Literal}
_SEQUENCES = {
    list,
    collections.abc.Iterable,
    collections.abc.Sequence,
    typing.List,  # noqa: UP006 - the SDK's annotations use it
}
_MAPPINGS = {dict, collections.abc.Mapping, typing.Dict}  # noqa: UP006


def problems(value: Any, annotation: Any, path: str = "body") -> list[str]:
    """Why `value` does not fit `annotation` (empty when it fits)."""
    origin = get_origin(annotation)
    if origin in _WRAPPERS:
        return problems(value, get_args(annotation)[0], path)
    if annotation is Any or annotation is object:
        return []
    if origin in (typing.Union, types.UnionType):
        found = [problems(value, member, path) for member in get_args(annotation)]
        if any(not p for p in found):
            return []
        return [f"{path}: fits no member of {annotation}: " + "; ".join(p[0] for p in found)]
    if origin in _LITERALS:
        return [] if value in get_args(annotation) else [f"{path}: {value!r} not in {annotation}"]
    if annotation is type(None):
        return [] if value is None else [f"{path}: not None"]
    if is_typeddict(annotation):
        return _typeddict_problems(value, annotation, path)
    if origin in _MAPPINGS or annotation in _MAPPINGS:
        return [] if isinstance(value, dict) else [f"{path}: not an object"]
    if origin in _SEQUENCES or getattr(origin, "__name__", "") == "SequenceNotStr":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        (item,) = get_args(annotation) or (Any,)
        return [p for i, v in enumerate(value) for p in problems(v, item, f"{path}[{i}]")]
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not a number"]
    if annotation in (str, int, bool):
        ok = isinstance(value, annotation) and (annotation is bool or not isinstance(value, bool))
        return [] if ok else [f"{path}: not {annotation.__name__}"]
    raise NotImplementedError(f"{path}: cannot check against {annotation!r}")


def _typeddict_problems(value: Any, annotation: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: not an object for {annotation.__name__}"]
    hints = get_type_hints(annotation, include_extras=True)
    found = [
        f"{path}.{key}: not a field of {annotation.__name__}" for key in value if key not in hints
    ]
    found += [
        f"{path}.{key}: required by {annotation.__name__}"
        for key, hint in hints.items()
        if key not in value and _required(hint, annotation.__total__)
    ]
    for key, item in value.items():
        if key in hints:
            found += problems(item, hints[key], f"{path}.{key}")
    return found


def _required(hint: Any, total: bool) -> bool:
    # The SDK's modules use `from __future__ import annotations`, so the class's own
    # __required_keys__ cannot see `Required[...]`: read it from the resolved hint instead.
    origin = get_origin(hint)
    if origin in (typing.Required, typing_extensions.Required):
        return True
    return total and origin not in (typing.NotRequired, typing_extensions.NotRequired)

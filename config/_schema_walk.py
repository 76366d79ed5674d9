"""Find which keys a model accepts at a pydantic error location (for "did you mean")."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every model reachable in `annotation` through list, dict, Optional, Annotated, unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin is dict:
        return _models_in(args[1]) if len(args) == 2 else []
    if origin in (list, tuple, typing.Union, types.UnionType):
        return [model for arg in args for model in _models_in(arg)]
    return []


def field_names_at(loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model(s) found by following `loc` from Deployment."""
    from config.models import Deployment

    current: list[type[BaseModel]] = [Deployment]
    for part in loc:
        if isinstance(part, int):
            continue
        owners = [model for model in current if part in model.model_fields]
        if owners:
            current = [m for o in owners for m in _models_in(o.model_fields[part].annotation)]
        else:
            # A union tag (`evm`, `every`) or a model name: narrow the candidates to it.
            narrowed = [m for m in current if _matches_tag(m, part)]
            current = narrowed or current
    return sorted({name for model in current for name in model.model_fields})


def _matches_tag(model: type[BaseModel], tag: str) -> bool:
    if model.__name__ == tag or tag in model.model_fields:
        return True
    return any(
        typing.get_origin(field.annotation) is typing.Literal
        and tag in typing.get_args(field.annotation)
        for field in model.model_fields.values()
    )

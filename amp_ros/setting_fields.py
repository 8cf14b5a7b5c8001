"""Settings described on their dataclass fields: one source for defaults, names, ranges and help.

A settings dataclass marks each field with one of

- :func:`setting` — a leaf setting: its external (ROS parameter) name, a description, its range
  ``(low, high)`` or choices ``("a", "b", ...)``, and whether it is read-only (needs a restart);
- :func:`group` — a nested settings dataclass, flattened with a name prefix
  (``crf_config.iterations`` with prefix ``"crf_"`` → ``crf_iterations``);
- :func:`not_exposed` — a field that is no external setting (it keeps its default).

:func:`flatten` lists the leaf settings of a dataclass with their defaults; :func:`build` makes an
instance back from a ``{name: value}`` mapping. A field without such a mark is an error, so a new
field cannot be forgotten. No ROS here: the node turns these into parameter descriptors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

_KEY = "amp_ros.setting"

Limits = tuple[int, int] | tuple[float, float] | tuple[str, ...] | None

T = TypeVar("T")


@dataclass(frozen=True)
class _Leaf:
    description: str
    limits: Limits
    read_only: bool
    name: str | None  # None: the field's name


@dataclass(frozen=True)
class _Group:
    prefix: str


@dataclass(frozen=True)
class _Hidden:
    reason: str


def setting(
    description: str, limits: Limits = None, *, read_only: bool = False, name: str | None = None
) -> dict[str, object]:
    """Field metadata of a leaf setting; ``name`` defaults to the field's name."""
    return {_KEY: _Leaf(description, limits, read_only, name)}


def group(prefix: str = "") -> dict[str, object]:
    """Field metadata of a nested settings dataclass, its settings named ``prefix + name``."""
    return {_KEY: _Group(prefix)}


def not_exposed(reason: str) -> dict[str, object]:
    """Field metadata of a field that is no external setting (``reason`` says why)."""
    return {_KEY: _Hidden(reason)}


@dataclass(frozen=True)
class Setting:
    """One leaf setting of a (possibly nested) settings dataclass."""

    name: str  # external name, e.g. the ROS parameter name
    path: tuple[str, ...]  # field names from the outer dataclass down, e.g. ("crf_config", "iterations")
    default: bool | int | float | str
    description: str
    limits: Limits  # (low, high) for numbers, choices for strings, None for none
    read_only: bool

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The allowed values of a string setting, or None."""
        if isinstance(self.default, str) and self.limits is not None:
            return self.limits
        return None

    def convert(self, value: object) -> bool | int | float | str:
        """``value`` as the type of the default (a float setting given an int becomes a float)."""
        kind = type(self.default)
        if kind is bool and not isinstance(value, bool):
            raise TypeError(f"{self.name} must be a bool, got {value!r}")
        if kind is not str and isinstance(value, str):
            raise TypeError(f"{self.name} must be a {kind.__name__}, got {value!r}")
        return kind(value)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"setting field {field.name} has no default")


def _mark(cls: type, field: dataclasses.Field) -> _Leaf | _Group | _Hidden:
    mark = field.metadata.get(_KEY)
    if mark is None:
        raise TypeError(
            f"{cls.__name__}.{field.name} needs setting(...), group(...) or not_exposed(...) metadata"
        )
    return mark


def flatten(cls: type, prefix: str = "", path: tuple[str, ...] = ()) -> list[Setting]:
    """The leaf settings of dataclass ``cls``, in field order, nested groups in place."""
    found = []
    for field in dataclasses.fields(cls):
        mark, default = _mark(cls, field), _default(field)
        if isinstance(mark, _Group):
            found += flatten(type(default), prefix + mark.prefix, (*path, field.name))
        elif isinstance(mark, _Leaf):
            if type(default) not in (bool, int, float, str):
                raise TypeError(f"{cls.__name__}.{field.name}: a setting is a bool, int, float or str")
            found.append(Setting(
                name=prefix + (mark.name or field.name), path=(*path, field.name), default=default,
                description=mark.description, limits=mark.limits, read_only=mark.read_only,
            ))
    names = [s.name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TypeError(f"{cls.__name__}: settings named twice: {duplicates}")
    return found


def check(settings: list[Setting], values: Mapping[str, object]) -> None:
    """Raise ValueError if a string setting in ``values`` is not one of its choices."""
    for item in settings:
        value = values.get(item.name, item.default)
        if item.choices is not None and value not in item.choices:
            raise ValueError(f"parameter {item.name} must be one of {item.choices}, got {value!r}")


def build(cls: type[T], values: Mapping[str, object], prefix: str = "") -> T:
    """An instance of ``cls`` with every setting taken from ``values`` (by name, converted to the
    default's type); fields that are not exposed keep their defaults. Raises KeyError for a
    missing name, TypeError/ValueError for a value of the wrong kind."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        mark = _mark(cls, field)
        if isinstance(mark, _Group):
            kwargs[field.name] = build(type(_default(field)), values, prefix + mark.prefix)
        elif isinstance(mark, _Leaf):
            item = Setting(prefix + (mark.name or field.name), (field.name,), _default(field),
                           mark.description, mark.limits, mark.read_only)
            kwargs[field.name] = item.convert(values[item.name])
    return cls(**kwargs)

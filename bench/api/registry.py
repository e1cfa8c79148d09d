"""Lazy name -> "module:attr" registries (built-ins, entry points, and runtime registrations).

Listing names never imports the target modules, so `videditbench --help` and `list` stay fast and
never import torch. Third-party packages add entries through the entry-point groups
`videditbench.methods` and `videditbench.metrics`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, TypeVar

from bench.api.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:Attr"
    origin: str = "builtin"  # builtin | entry-point:<dist> | runtime


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str, builtins: dict[str, str]):
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {n: Entry(n, t) for n, t in builtins.items()}
        self._objects: dict[str, T] = {}
        self._entry_points_loaded = False

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                dist = getattr(getattr(ep, "dist", None), "name", "?")
                self._entries[ep.name] = Entry(ep.name, ep.value, f"entry-point:{dist}")

    def register(self, name: str, target: str | T | None = None) -> Callable[[T], T] | T:
        """Register `target` ("module:attr" or an object) under `name`; usable as a decorator."""

        def deco(obj: T) -> T:
            self._entries[name] = Entry(name, f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', name)}", "runtime")
            self._objects[name] = obj
            return obj

        if target is None:
            return deco
        if isinstance(target, str):
            self._entries[name] = Entry(name, target, "runtime")
            self._objects.pop(name, None)
            return target  # type: ignore[return-value]
        return deco(target)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        self._load_entry_points()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, list(self._entries))
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def get(self, name: str) -> T:
        """Import and return the registered object (a class, usually)."""
        entry = self.entry(name)
        if name not in self._objects:
            module_name, _, attr = entry.target.partition(":")
            module = importlib.import_module(module_name)
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._objects[name] = obj
        return self._objects[name]

    def validate(self, names: list[str]) -> list[str]:
        """Raise UnknownNameError for the first name not registered; return the names."""
        for n in names:
            self.entry(n)
        return names

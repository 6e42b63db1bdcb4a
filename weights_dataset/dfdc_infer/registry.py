"""One small registry for everything the project chooses by name, in the spirit of timm's
``create_model``: video readers, face detectors, crop geometries, aggregation rules, presets,
checkpoint importers, fake methods.

    READERS = Registry("video reader")

    @READERS.register("decord")
    class DecordReader: ...

    READERS.get("decord")   # the class;  READERS.get("x") -> UnknownName: unknown video reader 'x'; known: decord, ...

Every lookup of an unknown name fails the same way, with one line that lists what exists, so a
typo on any command line is an ``error: unknown ... ; known: ...`` and exit code 2.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")
_MISSING: Any = object()


class UnknownName(ValueError):
    """A name that is not registered; the message lists the registered ones."""


class Registry(Generic[T]):
    """Named entries of one kind; ``kind`` is what the error message calls them."""

    def __init__(self, kind: str, pseudo_names: tuple[str, ...] = ()) -> None:
        """``pseudo_names`` are accepted by the caller before lookup (a reader's ``auto``) and are
        listed in the error message first, so the message shows every valid choice."""
        self.kind = kind
        self.pseudo_names = pseudo_names
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` above a class or function adds it as is."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        """Register ``entry``; a second entry under the same name is a bug, not an override."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry registered as ``name``; ``UnknownName`` lists the known names (or ``default``
        is returned, as ``dict.get`` does, when one is given)."""
        try:
            return self._entries[name]
        except KeyError:
            if default is not _MISSING:
                return default
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(self.names(with_pseudo=True))}") from None

    def check(self, name: str) -> str:
        """``name`` itself if registered (or a pseudo name); else ``UnknownName``."""
        if name not in self.pseudo_names:
            self.get(name)
        return name

    def names(self, with_pseudo: bool = False) -> list[str]:
        """Registered names, sorted (pseudo names first when asked for)."""
        return [*(self.pseudo_names if with_pseudo else ()), *sorted(self._entries)]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, entry: T) -> None:
        """Replace an entry: for tests (``monkeypatch.setitem(READERS, "nvdec", StandIn)``)."""
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

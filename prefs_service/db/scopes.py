"""Transaction scopes. The boundary of a unit of work (a view, a job, a
command) says whether it only reads or also writes; nothing below it guesses.

- `read_only()`: on SQLite a transaction begins deferred, so readers run beside
  the one writer (WAL); reads that need no common snapshot with other statements
  may run on a pooled connection in autocommit (see db/fast.py). Nothing is
  written in it.
- `writing()`: on SQLite a transaction begins IMMEDIATE, taking the write lock
  up front: in WAL mode a transaction that reads and then writes fails at once
  with SQLITE_BUSY if another writer committed in between (the busy timeout does
  not apply to that upgrade).

Outside any scope (a shell, a test's own set-up) a transaction begins as
writing: the choice that cannot fail that way. Views declare theirs with the
`@reads` and `@writes` decorators; create_app refuses a view of ours that
declares neither.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from enum import Enum
from functools import wraps
from typing import Any, TypeVar

from flask import Flask


class Scope(Enum):
    READ = "read"
    WRITE = "write"


READ, WRITE = Scope.READ, Scope.WRITE
_scope: ContextVar[Scope] = ContextVar("prefs_scope", default=WRITE)

F = TypeVar("F", bound=Callable[..., Any])


def current() -> Scope:
    """The scope the boundary entered (WRITE outside any)."""
    return _scope.get()


@contextmanager
def _entered(scope: Scope) -> Iterator[None]:
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def read_only() -> AbstractContextManager[None]:
    """A unit of work that only reads."""
    return _entered(READ)


def writing() -> AbstractContextManager[None]:
    """A unit of work that may write; its boundary commits once."""
    return _entered(WRITE)


def _declare(scope: Scope) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def scoped(*args: Any, **kwargs: Any) -> Any:
            token = _scope.set(scope)  # as _entered() does, without a generator per request
            try:
                return view(*args, **kwargs)
            finally:
                _scope.reset(token)

        scoped.prefs_scope = scope  # type: ignore[attr-defined]  # read by create_app's check
        return scoped  # type: ignore[return-value]

    return decorate


reads = _declare(READ)
"""A view that only reads (a POST may, too: a bulk check sends its list as a body)."""
writes = _declare(WRITE)
"""A view that may write (a GET may, too: honouring a Global Privacy Control signal)."""


def declared(view: Callable[..., Any]) -> Scope | None:
    return getattr(view, "prefs_scope", None)


def refuse_views_without_scope(app: Flask, *, exempt: Collection[str] = ()) -> None:
    """Fail start-up if a view (other than the `exempt` endpoints) declares
    neither @reads nor @writes: its transactions would begin by default."""
    missing = []
    for endpoint, view in app.view_functions.items():
        if endpoint in exempt:
            continue
        view_class = getattr(view, "view_class", None)
        if view_class is None:
            missing += [] if declared(view) else [endpoint]
        else:
            methods = [m.lower() for m in (view_class.methods or ())]
            missing += [f"{endpoint}.{m}" for m in methods if not declared(getattr(view_class, m))]
    if missing:
        raise RuntimeError(f"views without a transaction scope (@reads or @writes): {', '.join(sorted(missing))}")

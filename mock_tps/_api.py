"""Base classes of the mock scripting object model: the rules of RayStation's bridge.

RayStation's CPython bridge (``connect_cpython.py``, see
``research/raystation_api.md`` §1) imposes a few rules that every object of the
mock follows:

1. API methods take keyword arguments only; a positional argument raises
   ``TypeError("Method must be called with named arguments.")``
   (:func:`api_method`).
2. Collections are indexable by position or by name, support ``len``, iteration,
   ``.Count``, ``.Keys``/``keys()`` and ``._CASE_1`` dot access; a missing name
   raises ``IndexError``; ``x in collection`` is object membership
   (:class:`Collection`).
3. A missing member raises ``AttributeError``.  Setting an attribute the object
   does not declare as writable also raises ``AttributeError`` (a typo such as
   ``dfp.Doselevel = 2400`` must not pass silently).
4. Numeric arrays are returned as numpy copies; points and dicts as an
   :class:`ExpandoDictionary` copy whose mutation changes nothing.

Mock-only state and helpers carry a leading underscore.
"""
from __future__ import annotations

import functools
import hashlib
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, TypeVar

import numpy as np

__all__ = [
    "InvalidOperationException",
    "ArgumentException",
    "ExpandoDictionary",
    "Collection",
    "api_method",
    "versioned_property",
    "ScriptArgumentError",
]

_F = TypeVar("_F", bound=Callable[..., Any])

POSITIONAL_MESSAGE = "Method must be called with named arguments."


class InvalidOperationException(Exception):
    """The object's state forbids the call (approved plan or structure set, no dose).

    Named after .NET's ``System.InvalidOperationException``, which RayStation
    raises through the bridge for such refusals; scripts catch it as ``Exception``
    and read ``e.args[0]`` (or ``e.Message``, provided as an alias).
    """

    @property
    def Message(self) -> str:  # noqa: N802 - .NET spelling
        return str(self.args[0]) if self.args else ""


class ArgumentException(InvalidOperationException):
    """An argument has a wrong value (unknown ROI name, unknown function type, ...).

    Named after .NET's ``System.ArgumentException``.  Derives from
    :class:`InvalidOperationException` only so that one ``except`` catches every
    refusal of the mock; RayStation scripts catch ``Exception``.
    """


class ScriptArgumentError(ArgumentException, TypeError):
    """An argument name the method's signature (in the running version) lacks, or a
    required argument left out.

    RayStation's bridge hands the keyword names to .NET, which refuses a name the
    method lacks; the exact exception text is not public.  The mock raises this
    class (an :class:`ArgumentException` and a ``TypeError``) with the message
    ``"<Method>: unknown argument 'X' (RayStation <version>). Arguments: ..."``.
    """


def _current_profile() -> Any:
    from ._bridge import _session
    return _session().profile


def _member_key(owner: type, name: str) -> str:
    return f"{owner.__name__.lstrip('_')}.{name}"


class _ApiMethod:
    """An API method: keyword-only, strict about argument names, present per version.

    Reading the method from an object checks the current version profile (a
    method the version lacks raises ``AttributeError``, so ``hasattr`` answers
    as in that version).  Calling it refuses positional arguments
    (``TypeError("Method must be called with named arguments.")``, the bridge's
    message) and any argument the version's signature lacks
    (:class:`ScriptArgumentError`).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        import inspect

        functools.update_wrapper(self, func)
        self.func = func
        self.key = func.__qualname__.lstrip("_")
        params = list(inspect.signature(func).parameters.values())[1:]
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                raise TypeError(f"API method {func.__qualname__} must not take *args/**kwargs")
        self.params = tuple(p.name for p in params)
        self.required = tuple(p.name for p in params if p.default is p.empty)

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = _member_key(owner, name)

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        if _current_profile().lacks(self.key):
            raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{self.func.__name__}'")
        return functools.partial(self._call, obj)

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Called on the class (``Cls.Method(obj, Name=...)``): as the bound call."""
        return self._call(obj, *args, **kwargs)

    def allowed(self) -> tuple:
        """Argument names of the method in the current version."""
        absent = _current_profile().absent_arguments.get(self.key, frozenset())
        return tuple(p for p in self.params if p not in absent)

    def _call(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise TypeError(POSITIONAL_MESSAGE)
        allowed = self.allowed()
        name = self.func.__name__
        for k in kwargs:
            if k not in allowed:
                raise ScriptArgumentError(
                    f"{name}: unknown argument '{k}' (RayStation {_current_profile().name}). "
                    f"Arguments: {', '.join(allowed) or '(none)'}.")
        missing = [p for p in self.required if p not in kwargs]
        if missing:
            raise ScriptArgumentError(f"{name}: missing required argument(s) {', '.join(missing)}.")
        return self.func(obj, **kwargs)


def api_method(func: _F) -> _F:
    """Make ``func`` an API method (:class:`_ApiMethod`): keyword-only, strict, per version."""
    return _ApiMethod(func)  # type: ignore[return-value]


class _ApiProperty(property):
    """A read-only attribute some versions lack (``AttributeError`` there, as in RayStation)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = _member_key(owner, name)
        self.name = name

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        if _current_profile().lacks(self.key):
            raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{self.name}'")
        return super().__get__(obj, objtype)


def versioned_property(fget: Callable[[Any], Any]) -> Any:
    """Decorator: a read-only attribute that exists only in the versions whose profile has it."""
    return _ApiProperty(fget)


class ExpandoDictionary(dict):
    """A returned point or dict: readable as ``p.x`` and ``p['x']``.

    It is a copy: writing to it never changes the patient (as RayStation's
    ``ExpandoDictionary``).
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"'ExpandoDictionary' object has no attribute '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _point(x: float, y: float, z: float) -> ExpandoDictionary:
    """A fresh ``{'x','y','z'}`` expando of floats (cm)."""
    return ExpandoDictionary(x=float(x), y=float(y), z=float(z))


def _dot_name(name: str) -> str:
    """The ``._CASE_1`` attribute spelling of a collection key."""
    return "_" + re.sub(r"[^0-9A-Za-z]", "_", name)


class Shared:
    """Holder of a big immutable value shared by snapshots (never deep-copied).

    ``CompositeAction`` deep-copies the patient's mutable state; geometry
    coverages, CT numbers, influence matrices and dose arrays are never modified in
    place (every edit stores a new holder), so they can be shared.
    """

    __slots__ = ("value", "cache", "_digest")

    def __init__(self, value: Any) -> None:
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        self.value = value
        self.cache: Dict[Any, Any] = {}
        self._digest: Optional[str] = None

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Shared":
        return self

    def __copy__(self) -> "Shared":
        return self

    def digest(self) -> str:
        """SHA-1 of the value's bytes (arrays; sparse matrices by their parts)."""
        if self._digest is None:
            h = hashlib.sha1()
            v = self.value
            parts = [v] if isinstance(v, np.ndarray) else []
            if hasattr(v, "tocsr"):
                c = v.tocsr()
                parts = [c.data, c.indices, c.indptr, np.asarray(c.shape)]
            for p in parts:
                a = np.ascontiguousarray(p)
                h.update(str((a.shape, a.dtype.str)).encode())
                h.update(a.tobytes())
            self._digest = h.hexdigest()
        return self._digest


class LazyShared(Shared):
    """A :class:`Shared` whose value is made on first use (``make()``), then kept."""

    __slots__ = ("_make",)

    def __init__(self, make: Any) -> None:  # noqa: D107 - the parent's value slot stays unset
        self._make = make
        self.cache = {}
        self._digest = None

    @property
    def value(self) -> Any:  # type: ignore[override]
        try:
            return Shared.value.__get__(self)
        except AttributeError:
            v = self._make()
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
            Shared.value.__set__(self, v)
            self._make = None
            return v


def array_digest(a: Optional[np.ndarray]) -> Optional[str]:
    """SHA-1 of an array's shape, dtype and bytes (None stays None)."""
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    h = hashlib.sha1(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class ApiObject:
    """Base of every mock RayStation object.

    Public attributes are read-only unless listed in the class attribute
    ``_settable``; a write goes through :meth:`_on_set` (which may refuse it, e.g.
    on an approved plan).  Underscore attributes are the mock's own state.
    """

    _settable: tuple = ()

    def _init(self, **values: Any) -> None:
        """Set public attributes without the write checks (construction only)."""
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in type(self)._settable:
            if hasattr(self, name):
                raise AttributeError(f"'{type(self).__name__}' attribute '{name}' is read-only")
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        value = self._on_set(name, value)
        object.__setattr__(self, name, value)

    def _on_set(self, name: str, value: Any) -> Any:
        """Validate (and possibly convert) a write to a settable attribute."""
        return value

    def __repr__(self) -> str:
        name = self.__dict__.get("Name")
        return f"<{type(self).__name__} {name!r}>" if name is not None else f"<{type(self).__name__}>"


def _check_finite_number(owner: str, name: str, value: Any) -> float:
    """Return ``float(value)``; refuse non-numbers, bools, Decimal and non-finite values."""
    from decimal import Decimal

    if isinstance(value, (bool, Decimal)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}.{name} must be a number, got {type(value).__name__} {value!r}")
    f = float(value)
    if not np.isfinite(f):
        raise ValueError(f"{owner}.{name} must be finite, got {value!r}")
    return f


class Collection:
    """A RayStation object collection.

    Indexable by position (``c[0]``, negative allowed) or by name (``c['PTV']``,
    exact, case-sensitive); a missing name or an out-of-range position raises
    ``IndexError``.  Supports ``len``, iteration, ``.Count``, ``.Keys``/``keys()``
    and ``._NAME`` dot access (non-alphanumerics replaced by ``_``).
    ``x in c`` tests object membership (a string is never a member).

    Items without a ``Name`` (optimization functions, evaluation functions) can
    only be indexed by position.  The collection is read-only to scripts.
    """

    def __init__(self, items: Iterable[Any] = (), key: str = "Name") -> None:
        self._items: List[Any] = list(items)
        self._key = key

    # -- mock internals ---------------------------------------------------
    def _append(self, item: Any) -> None:
        self._items.append(item)

    def _remove(self, item: Any) -> None:
        self._items = [i for i in self._items if i is not item]

    def _name_of(self, item: Any) -> Optional[str]:
        k = getattr(item, self._key, None)
        return k if isinstance(k, str) else None

    def _names(self) -> List[str]:
        return [n for n in (self._name_of(i) for i in self._items) if n is not None]

    # -- public protocol ----------------------------------------------------
    @property
    def Count(self) -> int:  # noqa: N802
        return len(self._items)

    @property
    def Keys(self) -> List[str]:  # noqa: N802
        return self._names()

    def keys(self) -> List[str]:
        return self._names()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __contains__(self, obj: Any) -> bool:
        return any(obj is i for i in self._items)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self._items)
            k = int(key)
            if not -n <= k < n:
                raise IndexError(f"Index {k} is out of range (Count = {n}).")
            return self._items[k]
        if isinstance(key, str):
            for i in self._items:
                if self._name_of(i) == key:
                    return i
            raise IndexError(f"No element named '{key}' in the collection.")
        raise TypeError(f"Collection index must be an int or a str, got {type(key).__name__}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_items" not in self.__dict__:
            raise AttributeError(name)
        if name.startswith("_"):
            for i in self.__dict__["_items"]:
                k = self._name_of(i)
                if k is not None and _dot_name(k) == name:
                    return i
        raise AttributeError(f"'Collection' object has no attribute '{name}'")

    def __repr__(self) -> str:
        return f"<Collection Count={len(self._items)}>"

"""``import pydicom`` for ``reirrad dvh``, without what only pydicom's extras need.

pydicom 3's ``__init__`` imports, besides its reader, what a short ``reirrad dvh``
process never uses: ``requests`` and ``tqdm`` (when installed) and ``urllib.request``
(with ``http.client`` and ``email``) for ``pydicom.data``'s downloads of example files;
``pydicom.examples``, which finds 13 example files by recursive searches of pydicom's
test data; and ``importlib.metadata`` (with ``email``, ``zipfile``, ``csv``) to read its
own version: about half of pydicom's import time (``docs/decisions/dvh-process-speed.md``).
While pydicom imports:

- ``requests`` and ``tqdm`` are hidden (``sys.modules[name] = None``): pydicom takes its
  documented fallback on ``urllib``;
- ``urllib.request`` and ``pydicom.examples`` are empty placeholder modules: the
  downloader's ``import urllib.request`` binds only the ``urllib`` package, and
  pydicom's ``import pydicom.examples`` finds the placeholder;
- ``importlib.metadata`` is a placeholder whose ``version(name)`` reads the ``Version:``
  line of the one ``<name>-*.dist-info/METADATA`` beside the package, the file
  ``importlib.metadata.version`` reads for an installed package; without exactly one
  such file it asks the real ``importlib.metadata``.

Each is removed as soon as pydicom is imported: the real modules import as usual
afterwards (``import pydicom.examples`` then loads the real module).
"""
from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Dict

__all__ = ["import_pydicom_without_extras"]

#: Optional packages pydicom imports only for its downloader (with a fallback when missing).
HIDDEN = ("requests", "tqdm")
#: Modules pydicom imports at the top of modules ``reirrad dvh`` does not use.
EMPTY_PLACEHOLDERS = ("urllib.request", "pydicom.examples")


def import_pydicom_without_extras() -> None:
    """Import pydicom as described in the module doc (a no-op when pydicom is imported already)."""
    if "pydicom" in sys.modules:
        return
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    placeholders: Dict[str, ModuleType] = {name: ModuleType(name) for name in EMPTY_PLACEHOLDERS
                                           if name not in sys.modules}
    if "importlib.metadata" not in sys.modules:
        metadata = ModuleType("importlib.metadata")
        metadata.version = _installed_version  # type: ignore[attr-defined]
        placeholders["importlib.metadata"] = metadata
    sys.modules.update(placeholders)
    try:
        import pydicom  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _installed_version(name: str) -> str:
    """``importlib.metadata.version(name)`` of the package ``name`` being imported, read from the
    one ``<name>-<version>.dist-info/METADATA`` in the directory holding the package."""
    version = _dist_info_version(name)
    if version is not None:
        return version
    if getattr(sys.modules.get("importlib.metadata"), "version", None) is _installed_version:
        del sys.modules["importlib.metadata"]               # the placeholder: the real module replaces it
    from importlib.metadata import version as real_version
    return real_version(name)


def _dist_info_version(name: str) -> "str | None":
    package = sys.modules.get(name)
    path = getattr(package, "__file__", None)
    if not path:
        return None
    site = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    prefix = name.replace("-", "_") + "-"
    try:
        found = [d for d in os.listdir(site) if d.startswith(prefix) and d.endswith(".dist-info")]
        if len(found) != 1:
            return None
        with open(os.path.join(site, found[0], "METADATA"), encoding="utf-8") as f:
            header: Dict[str, str] = {}
            for line in f:
                if not line.strip():
                    break                                   # the end of the header
                key, sep, value = line.partition(":")
                if sep and key in ("Name", "Version"):
                    header[key] = value.strip()
    except OSError:
        return None
    if header.get("Name", "").lower().replace("-", "_") != name.lower().replace("-", "_"):
        return None
    return header.get("Version") or None

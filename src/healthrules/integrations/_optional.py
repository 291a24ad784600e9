"""Import an optional dependency, or fail with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_optional"]


class MissingExtraError(ImportError):
    """An optional dependency of healthrules is not installed; the message says how to get it."""


def import_optional(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``healthrules[extra]``.

    Parameters
    ----------
    module
        The module to import, for instance ``"pyspark.sql"``.
    extra
        The healthrules extra that installs it, for instance ``"spark"``.
    purpose
        What needs it, for the message (``"healthrules.integrations.spark"``).

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtraError
        If the module (or one of its own dependencies) cannot be imported.

    Examples
    --------
    >>> from healthrules.integrations import import_optional
    >>> import_optional("json", extra="spark", purpose="an example").__name__
    'json'
    >>> import_optional("no_such_module_x", extra="spark", purpose="an example")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    healthrules...MissingExtraError: an example needs no_such_module_x, ...'healthrules[spark]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed ({exc}): "
            f"pip install 'healthrules[{extra}]'"
        ) from exc

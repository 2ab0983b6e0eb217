"""mypreferences-sandbox: a local stand-in for the PossibleNOW MyPreferences Profile API."""

from __future__ import annotations

from importlib import metadata

from .app import create_app

__version__ = metadata.version("mypreferences-sandbox")
__all__ = ["__version__", "create_app"]

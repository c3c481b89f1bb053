"""The package version, in its own module so every part of meterd can read it without import cycles."""

from __future__ import annotations

__version__ = "0.1.0"

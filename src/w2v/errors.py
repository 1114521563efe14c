"""The errors this library raises for things a user can fix: each carries one line that names the file or
the setting, the value, and what is allowed, so a command line can show it without a traceback."""

from __future__ import annotations

from pathlib import Path


class W2VError(Exception):
    """A failure the user can fix: a bad setting, a missing or damaged file, an unreachable server."""


class ParamError(W2VError):
    """A setting (a key of params.yaml) that cannot be used."""


class DamagedFileError(W2VError):
    """A file written by an earlier step that cannot be read back (truncated, overwritten, altered)."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = Path(path)

"""What every entry point shares: logging set-up and turning known failures into one clear line."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Callable

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A failure the user can fix (bad param, missing file, unreachable server): shown as one line, no traceback."""


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("W2V_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(name)s: %(message)s", stream=sys.stderr, force=True)


def entry_point(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a stage's ``main``: set up logging; a UserError exits 2 with its message, Ctrl-C exits 130.

    Set W2V_DEBUG=1 to see the traceback behind a UserError.
    """

    spec = main.__globals__.get("__spec__")  # run as `python -m stages.vocab`, __module__ is "__main__"
    module = spec.name if spec else main.__module__
    stage_log = logging.getLogger("w2v." + module.rsplit(".", 1)[-1])

    @functools.wraps(main)
    def run() -> None:
        setup_logging()
        from stages.fsio import remove_stale_temporaries

        for temporary in remove_stale_temporaries():
            stage_log.info("removed %s, left by a killed run", temporary)
        try:
            main()
        except UserError as exc:
            stage_log.debug("traceback", exc_info=True)
            stage_log.error("error: %s", exc)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            stage_log.error("interrupted: no output was written (partial files are removed); re-run to start again")
            sys.exit(EXIT_INTERRUPTED)

    return run

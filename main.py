"""Covenant command line: thin; it parses arguments and calls the packages.

The command groups live in the composition layer (:mod:`agents.app.commands`), each with
a ``register(app)`` function. Any :class:`~config.errors.CovenantError` ends the command
with its message in red and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from agents.app.commands import COMMAND_GROUPS
from config.errors import CovenantError

app = typer.Typer(
    name="covenant",
    help="Covenant: a runtime for autonomous economic agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


for group in COMMAND_GROUPS:
    group.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    try:
        # Without standalone mode click returns the code of a `typer.Exit` instead of
        # exiting, and lets our own errors through to be printed below.
        result = app(args=argv, standalone_mode=False)
    except CovenantError as exc:
        # Printed as written: "did:key:" is no emoji and "[::1]" no markup.
        message = f"[red]error:[/] {escape(str(exc))}"
        Console(stderr=True, emoji=False).print(message, highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is None:
            raise
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(code)
    return result if isinstance(result, int) else 0


def console() -> None:
    """The `covenant` command that `pip install` puts on the PATH."""
    sys.exit(main())


if __name__ == "__main__":
    console()

"""The ``finops`` command line: thin commands over collectors/ and models/.

Each module in ``finops/commands/`` defines ``register(app)`` and adds its commands;
this file only builds the app, finds those modules and turns expected errors into a
message and an exit code.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.markup import escape

from finops import commands
from finops.errors import FinopsError
from finops.progress import console

app = typer.Typer(
    name="finops",
    help="FinOps cost attribution and optimisation: collect bills, allocate, detect, recommend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
collect_app = typer.Typer(help="Collect billing exports, query histories and utilisation.",
                          no_args_is_help=True)
app.add_typer(collect_app, name="collect")


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app, collect_app)


_register_all()


def main() -> None:
    try:
        # Without standalone mode a command's typer.Exit(code) comes back as the return value.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except FinopsError as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
        if exc.hint:
            console.print(f"  → {exc.hint}", markup=False)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        errors, usage = _click_exceptions()
        if isinstance(exc, errors):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2 if isinstance(exc, usage) else int(getattr(exc, "exit_code", 1)))
        raise


def _click_exceptions() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """click's error classes, and those of the click typer vendors, if it does."""
    import click

    errors: list[type[Exception]] = [click.ClickException]
    usage: list[type[Exception]] = [click.UsageError]
    try:
        from typer._click import exceptions as vendored
    except ImportError:
        return tuple(errors), tuple(usage)
    return (*errors, vendored.ClickException), (*usage, vendored.UsageError)

if __name__ == "__main__":
    main()

"""What every command needs: settings, the warehouse and state.db, from ``--home``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from finops.settings import Settings, load_settings
from finops.state import State, open_state
from finops.warehouse import Warehouse

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Warehouse folder (default: FINOPS_HOME or data/warehouse).",
                 show_default=False),
]


@dataclass
class Context:
    settings: Settings
    warehouse: Warehouse
    state: State

    def close(self) -> None:
        self.state.close()


def open_context(home: Path | None) -> Context:
    settings = load_settings(home=home)
    wh = Warehouse(settings.home)
    return Context(settings, wh, open_state(settings.home))

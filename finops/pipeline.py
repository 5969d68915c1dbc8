"""Every stage once, in order: what ``finops run`` and ``finops demo`` do after collecting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from finops.errors import FinopsError
from finops.progress import info
from finops.state import State
from finops.warehouse import Warehouse


@dataclass
class StageOutcome:
    stage: str
    ok: bool
    message: str


def _allocate(wh: Warehouse, state: State) -> str:
    from finops.settings import load_settings
    from models.allocation import allocate

    result = allocate(wh, state, config_path=load_settings(home=wh.home).allocation_config)
    return f"{len(result.periods)} periods allocated, totals preserved"


def _anomalies(wh: Warehouse, state: State) -> str:
    from models.anomalies import run_stage

    return run_stage(wh, state)


def _forecast(wh: Warehouse, state: State) -> str:
    from models.forecast import run_stage

    return run_stage(wh, state)


def _query_cost(wh: Warehouse, state: State) -> str:
    from models.query_cost import run_stage

    return run_stage(wh, state)


def _recommend(wh: Warehouse, state: State) -> str:
    from models.rightsizing.run import run_stage

    return run_stage(wh, state)


# Query cost comes first: its per-tenant shares split the warehouse bills in allocate.
STAGES: list[tuple[str, Callable[[Warehouse, State], str]]] = [
    ("query_cost", _query_cost),
    ("allocate", _allocate),
    ("recommend", _recommend),
    ("anomalies", _anomalies),
    ("forecast", _forecast),
]


def run_stages(wh: Warehouse, state: State) -> list[StageOutcome]:
    """Run each stage; one stage failing is reported and the rest still run."""
    outcomes = []
    for name, stage in STAGES:
        try:
            outcomes.append(StageOutcome(name, True, stage(wh, state)))
        except FinopsError as exc:
            outcomes.append(StageOutcome(name, False, str(exc)))
        info(f"{name}: {'ok' if outcomes[-1].ok else 'FAILED'}: {outcomes[-1].message}")
    return outcomes

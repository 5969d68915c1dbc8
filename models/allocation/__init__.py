"""Attribution: tags, virtual-tag rules, shared pools and lineage (see engine.py)."""

from models.allocation.config import UNALLOCATED, AllocationConfig, load_config
from models.allocation.engine import (
    ALLOCATION_COLUMNS,
    CUBE,
    CUBE_DIMENSIONS,
    AllocationResult,
    PeriodCheck,
    allocate,
    allocate_period,
    coverage_by_method,
    cube_frame,
    resolve_config,
)
from models.allocation.ledger import ALLOCATED, allocated_rows

__all__ = [
    "ALLOCATED",
    "ALLOCATION_COLUMNS",
    "CUBE",
    "CUBE_DIMENSIONS",
    "UNALLOCATED",
    "AllocationConfig",
    "AllocationResult",
    "PeriodCheck",
    "allocate",
    "allocate_period",
    "allocated_rows",
    "coverage_by_method",
    "cube_frame",
    "load_config",
    "resolve_config",
]

"""Every session-state key the app uses, in one place."""

from __future__ import annotations

from typing import Final


class Keys:
    """Session-state keys (widget keys included), so no page invents its own spelling."""

    HOME: Final = "finops.home"
    """The warehouse folder this session reads, resolved once (command line, env, settings)."""

    PERIOD: Final = "showback.period"
    """The billing month shown on the Showback page, ``YYYY-MM``."""

    COST: Final = "showback.cost"
    """``effective_cost`` (amortised, the default) or ``billed_cost`` (as invoiced)."""

    CURRENCY: Final = "showback.currency"
    """The billing currency shown when a month holds more than one."""

    TENANT_CHART: Final = "showback.tenant_chart"
    """The Showback page's cost-by-tenant chart (an element key, kept stable across reruns)."""

    RUNS_LIMIT: Final = "health.runs_limit"
    """How many recent runs the Data health page lists."""

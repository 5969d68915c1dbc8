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

    PRINCIPAL: Final = "finops.principal"
    """Who is signed in (:class:`models.access.Principal`), set by ``main.py`` on every run."""

    # ---- showback ------------------------------------------------------------------
    PERIOD_KIND: Final = "showback.period_kind"
    """``month``, ``quarter`` or ``range`` (custom dates)."""

    QUARTER: Final = "showback.quarter"
    """The quarter shown, ``YYYY-Qn``."""

    RANGE: Final = "showback.range"
    """The custom date range, a (start, end) pair of dates."""

    GROUP: Final = "showback.group"
    """What the main table groups by: tenant, team, cost_center, service, account, provider, tag."""

    TAG_KEY: Final = "showback.tag_key"
    """The tag key grouped by when GROUP is ``tag``."""

    DRILL_GROUP: Final = "showback.drill.group"
    """Row selection in the main (grouped) table: the first drill-down level."""

    DRILL_SECOND: Final = "showback.drill.second"
    """Row selection in the second level (services of a tenant, or tenants of a service)."""

    DRILL_RESOURCE: Final = "showback.drill.resource"
    """Row selection in the resources table: opens the resource's line items."""

    LINES_PAGE: Final = "showback.lines.page"
    """Page of the line items table."""

    # ---- trends ----------------------------------------------------------------------
    TREND_WINDOW: Final = "trends.window"
    TREND_STACK: Final = "trends.stack"
    TREND_FOCUS: Final = "trends.focus"
    TREND_CURRENCY: Final = "trends.currency"
    TREND_COST: Final = "trends.cost"

    # ---- anomalies ---------------------------------------------------------------------
    ANOMALY_STATUS: Final = "anomalies.status"
    ANOMALY_SEVERITY: Final = "anomalies.severity"
    ANOMALY_SELECTED: Final = "anomalies.selected"
    ANOMALY_COMMENT: Final = "anomalies.comment"
    ANOMALY_PAGE: Final = "anomalies.page"

    # ---- recommendations -----------------------------------------------------------------
    REC_KIND: Final = "recs.kind"
    REC_STATUS: Final = "recs.status"
    REC_ACCOUNT: Final = "recs.account"
    REC_TENANT: Final = "recs.tenant"
    REC_SELECTED: Final = "recs.selected"
    REC_COMMENT: Final = "recs.comment"
    REC_PAGE: Final = "recs.page"

    # ---- unit economics ----------------------------------------------------------------
    UE_PERIOD: Final = "units.period"
    UE_QUERIES_PAGE: Final = "units.queries_page"

    # ---- data health -------------------------------------------------------------------
    HEALTH_COVERAGE_PERIOD: Final = "health.coverage_period"
    HEALTH_REJECTED_PAGE: Final = "health.rejected_page"
    HEALTH_FULL_VALIDATION: Final = "health.full_validation"

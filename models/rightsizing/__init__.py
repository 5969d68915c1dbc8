"""Right-sizing and savings recommendations (issue #7).

Modules: ``catalog`` (instance types and list prices), ``prices`` (what the bill says is
paid), ``needs`` (utilisation statistics), ``compute`` (right-size), ``idle`` (idle and
orphaned resources), ``warehouses`` (Snowflake, BigQuery), ``commitments`` (coverage,
utilisation, purchase), ``lifecycle`` (decisions in state.db), ``run`` (the stage, and the
functions the CLI and the app call).
"""

"""Models over the warehouse: attribution, showback, query cost, forecasts, right-sizing."""

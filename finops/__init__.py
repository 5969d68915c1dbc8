"""FinOps cost attribution and optimisation toolkit: the core."""

__version__ = "0.1.0"

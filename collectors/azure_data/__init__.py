"""Microsoft FinOps toolkit open data used by ``collectors.azure`` (see README.md here)."""

"""CLI command modules; each defines ``register(app, collect_app)``."""

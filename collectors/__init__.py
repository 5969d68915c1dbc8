"""Collectors: one module or package per source, each yielding FOCUS (or query or
utilisation) frames. Cloud SDKs are imported inside the collector that needs them."""

"""The web surface: the playground at ``/``, channel galleries at ``/c/...``, health and metrics."""

"""The HTTP transport: ``events/`` and REST routes through the same bindings,
with DRF's authentication, and the OpenAPI description of them.

This room may import the core; never ``live`` (writes reach watchers through
model signals) or the websocket transport. :mod:`channels_binding.urls`
re-exports its URL patterns.
"""

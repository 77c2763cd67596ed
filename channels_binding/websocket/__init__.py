"""The websocket transport: consumers read frames, answer them through the
bindings, and write replies and pushes in order through a bounded outbox.

``consumers`` is the transport, ``connection`` what a connection is (identity,
groups, connection-level events), ``outbox`` and ``throttling`` its limits. This
room may import the core and ``live``; nothing outside it imports it, except the
public re-export :mod:`channels_binding.consumers` and the system checks.
"""

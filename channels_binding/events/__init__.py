"""What an event is, whichever transport brought it: the wire format
(``protocol``), the request a binding sees (``request``), and how requests share
trips to the database thread (``batching``).

The floor of the house: it imports only ``exceptions`` and libraries.
"""

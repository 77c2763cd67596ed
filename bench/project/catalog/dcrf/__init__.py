"""djangochannelsrestframework consumers, one module each: a module's observers
connect their signal receivers when it is imported, so only the stack under test
imports its own (see :mod:`bench.project.asgi`)."""

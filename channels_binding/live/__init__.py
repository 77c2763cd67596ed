"""Live data: from a committed change to the pushes each watcher may see.

``capture`` turns model signals into one change message per stream after the
commit; ``hub`` is each process's one user of the channel layer; ``subscriptions``
indexes what every connection watches; ``pushes`` computes the frames; ``groups``
names what crosses the layer; ``watching`` is what a binding adds to watch what it
reads. This room may import the core (settings, registry, serializers, ``events``),
never ``bindings`` (which mixes ``watching`` in) and never a transport.
"""

from .capture import announce
from .revocation import adisconnect_user, disconnect_user

__all__ = ["announce", "adisconnect_user", "disconnect_user"]

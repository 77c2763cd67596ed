"""Django models as a live JSON API over one websocket and over HTTP."""

__version__ = "2.0.0.dev0"

from __future__ import annotations

from django.apps import AppConfig


class ChannelsBindingConfig(AppConfig):
    name = "channels_binding"
    verbose_name = "Channels binding"

    def ready(self) -> None:
        # Imported here, not at the top: they import models and DRF, which Django
        # allows only once the app registry is ready.
        from . import checks  # noqa: F401  (registers the system checks)
        from .live import revocation
        from .live.capture import connect_signals
        from .registry import autodiscover

        autodiscover()
        connect_signals()
        revocation.connect_signals()

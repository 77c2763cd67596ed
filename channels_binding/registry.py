"""Which binding answers which stream, and the start-up discovery that fills it."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import module_has_submodule

from .exceptions import UnknownEvent
from .settings import binding_settings


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Registry:
    """Streams (``"shop.Product"``) mapped to their binding class."""

    def __init__(self) -> None:
        self._streams: dict[str, type] = {}
        self._by_model: dict[type, tuple[str, ...]] | None = None

    def register(self, binding: type) -> None:
        stream = binding.stream
        current = self._streams.get(stream)
        # The same class imported again (module reloaded) replaces itself.
        if current is not None and _path(current) != _path(binding):
            raise ImproperlyConfigured(
                f"Two bindings serve the stream {stream!r}: {_path(current)} and "
                f"{_path(binding)}. Give one of them its own `stream` attribute."
            )
        self._streams[stream] = binding
        self._by_model = None

    def unregister(self, stream: str) -> None:
        self._streams.pop(stream, None)
        self._by_model = None

    def get(self, stream: str) -> type:
        try:
            return self._streams[stream]
        except KeyError:
            raise UnknownEvent(f"No binding serves the stream {stream!r}.") from None

    def __contains__(self, stream: str) -> bool:
        return stream in self._streams

    def __iter__(self):
        return iter(sorted(self._streams.values(), key=lambda b: b.stream))

    def streams_for(self, model: type) -> tuple[str, ...]:
        """The streams whose binding serves ``model`` (looked up on every save)."""
        by_model = self._by_model
        if by_model is None:
            by_model = {}
            for binding in self._streams.values():
                if binding.model is not None:
                    # Keyed by table: a proxy's rows are its concrete model's rows.
                    concrete = binding.model._meta.concrete_model
                    by_model[concrete] = by_model.get(concrete, ()) + (binding.stream,)
            self._by_model = by_model
        return by_model.get(model._meta.concrete_model, ())


registry = Registry()


def _import_bindings(module_name: str) -> None:
    """Import a bindings module, and every module inside it if it is a package.

    Only a missing module is passed over; an error inside one is raised.
    """
    module = importlib.import_module(module_name)
    if hasattr(module, "__path__"):
        for info in pkgutil.iter_modules(module.__path__, module_name + "."):
            importlib.import_module(info.name)


def autodiscover() -> None:
    """Import ``bindings`` of every installed app, then ``BINDINGS_MODULES``."""
    for app_config in apps.get_app_configs():
        if module_has_submodule(app_config.module, "bindings"):
            _import_bindings(f"{app_config.name}.bindings")
    for name in binding_settings.BINDINGS_MODULES:
        if importlib.util.find_spec(name) is None:
            raise ImproperlyConfigured(
                f"CHANNELS_BINDING['BINDINGS_MODULES'] names {name!r}, which cannot "
                "be found. Check the dotted path."
            )
        _import_bindings(name)

from __future__ import annotations

import os

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "bench.project.catalog"
    label = "catalog"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        if os.environ.get("BENCH_COUNT_QUERIES"):
            from .querycount import install

            install()

"""The distributions: `python -m build` makes an sdist and, from it, a wheel, which
installs into a fresh virtualenv and serves a minimal project of its own.

The wheel is installed as a user installs it, with its dependencies, by pip with the
machine's package index configuration (as `make venv` does); pip's cache keeps that
to a few seconds after the first run. The project runs from a folder outside the
checkout, so it can only use what the wheel installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from channels_binding import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CLIENT_FILES = ["client.js", "client.d.ts", "package.json"]

PROJECT = {
    "settings.py": """
        SECRET_KEY = "not secret"
        DEBUG = True
        ALLOWED_HOSTS = ["*"]
        INSTALLED_APPS = [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.staticfiles",
            "rest_framework",
            "channels",
            "channels_binding",
            "notes",
        ]
        DATABASES = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
        }
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        ROOT_URLCONF = "urls"
        ASGI_APPLICATION = "asgi.application"
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }
        STATIC_URL = "/static/"
        STATIC_ROOT = "collected"
        USE_TZ = True
    """,
    "urls.py": """
        from django.urls import include, path

        urlpatterns = [path("api/", include("channels_binding.urls"))]
    """,
    "asgi.py": """
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
        django_asgi_app = get_asgi_application()

        from channels.routing import ProtocolTypeRouter, URLRouter
        from django.urls import path

        from channels_binding.consumers import AsyncConsumer

        application = ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": URLRouter([path("ws/", AsyncConsumer.as_asgi())]),
            }
        )
    """,
    "notes/__init__.py": "",
    "notes/models.py": """
        from django.db import models


        class Note(models.Model):
            text = models.CharField(max_length=100)
    """,
    "notes/bindings.py": """
        from channels_binding.bindings import AsyncBinding

        from .models import Note


        class NoteBinding(AsyncBinding):
            model = Note
            fields = ["id", "text"]
    """,
    # A retrieve over the websocket, and the same object over HTTP.
    "talk.py": """
        import asyncio
        import json

        import django

        django.setup()

        from asgiref.sync import sync_to_async
        from django.test import Client

        from asgi import application
        from channels_binding.testing import BindingCommunicator
        from notes.models import Note


        async def main():
            note = await sync_to_async(Note.objects.create)(text="hello")
            async with BindingCommunicator(application, "/ws/") as client:
                frame = await client.request("notes.Note.retrieve", {"id": note.pk})
            http = await sync_to_async(Client().get)(f"/api/notes/Note/{note.pk}/")
            print(json.dumps({"ws": frame, "http": json.loads(http.content)}))


        asyncio.run(main())
    """,
}


def run(*args, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited with {result.returncode}:\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return result.stdout


#: Left out of the copy that is built: what a checkout's own builds and tools leave
#: (a stale ``*.egg-info`` would add the files its SOURCES.txt lists to the sdist).
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "*.egg-info",
    "build",
    "dist",
    "_build",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "test-artifacts",
    "db.sqlite3",
)


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel built from it, that `python -m build` makes from a
    clean copy of the tree."""
    tree = tmp_path_factory.mktemp("tree") / "channels-binding"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, tree, cwd=out)
    (sdist,) = out.glob("channels_binding-*.tar.gz")
    (wheel,) = out.glob("channels_binding-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dists) -> Path:
    """A fresh virtualenv with the wheel (and its dependencies) installed."""
    path = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", path, cwd=path)
    python = path / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", dists["wheel"], cwd=path)
    return path


def test_twine_accepts_both_distributions(dists):
    output = run(
        sys.executable, "-m", "twine", "check", "--strict", *dists.values(), cwd=ROOT
    )
    assert output.count("PASSED") == 2


def test_the_wheel_holds_the_client_and_its_declarations(dists):
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        manifest = json.loads(
            wheel.read("channels_binding/static/channels_binding/package.json")
        )
    for name in CLIENT_FILES:
        assert f"channels_binding/static/channels_binding/{name}" in names
    assert "channels_binding/py.typed" in names
    assert "channels_binding/management/commands/bindings.py" in names
    assert not [name for name in names if name.startswith(("tests/", "demo/"))]
    assert manifest["types"] == "./client.d.ts"
    assert dists["wheel"].name == f"channels_binding-{__version__}-py3-none-any.whl"


def test_the_sdist_holds_the_docs_tests_and_demo(dists):
    with tarfile.open(dists["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    expected = [
        "docs/conf.py",
        "docs/index.rst",
        "tests/conftest.py",
        "tests/ts/example.ts",
        "tests/ts/package-lock.json",
        "demo/catalog/templates/catalog/base.html",
        "Makefile",
        *(f"channels_binding/static/channels_binding/{name}" for name in CLIENT_FILES),
    ]
    assert [name for name in expected if name not in names] == []
    unwanted = ("node_modules", "__pycache__", "docs/_build", ".venv")
    assert [name for name in names if any(part in name for part in unwanted)] == []


def test_a_project_runs_against_the_installed_wheel(venv, tmp_path):
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    python = venv / "bin" / "python"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
    }
    env.update(PYTHONPATH=str(tmp_path), DJANGO_SETTINGS_MODULE="settings")

    def django(*args):
        return run(python, "-m", "django", *args, cwd=tmp_path, env=env)

    location = run(
        python,
        "-c",
        "import channels_binding; print(channels_binding.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert Path(location.strip()).is_relative_to(venv)
    run(python, "-m", "pip", "check", cwd=tmp_path, env=env)

    django("check", "--fail-level", "WARNING")
    django("migrate", "--run-syncdb", "--noinput", "-v", "0")
    assert "notes.Note.retrieve" in django("bindings")
    django("collectstatic", "--noinput", "-v", "0")
    for name in CLIENT_FILES:
        assert (tmp_path / "collected" / "channels_binding" / name).is_file()

    frames = json.loads(run(python, "talk.py", cwd=tmp_path, env=env))
    assert frames["ws"]["event"] == "notes.Note.retrieve"
    assert frames["ws"]["data"] == {"id": 1, "text": "hello"}
    assert frames["http"] == {
        "event": "notes.Note.retrieve",
        "data": frames["ws"]["data"],
    }

"""The version matrix: ``make test-matrix`` (``nox``), one session at a time.

Every supported Python × Django combination runs the test suite without its slow
tests (``-m "not slow"``: those start real servers, a browser, builds), with the
newest Django REST framework, Channels and daphne that the combination installs.
``lowest`` runs it once more with the lowest versions ``install_requires`` allows.
``make test`` stays the one full run (every test, one combination) that CI makes.

Interpreters are found on ``PATH`` (``python3.12``) and in pyenv's versions
(``$PYENV_ROOT/versions/3.12.*/bin``). One that is missing is reported below and
its sessions are skipped with nox's "interpreter not found" message; with
``--error-on-missing-interpreters`` they fail instead. A combination that Django
itself does not support (Django 6.x needs Python 3.12) is skipped with a message too.

    nox -l                                   # the sessions
    nox -s "tests-3.12(django='6.0')"        # one of them
    nox -p 3.13                              # every session of Python 3.13
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DJANGOS = ["5.2", "6.0", "6.1"]
#: The oldest Python each Django release supports.
DJANGO_PYTHON = {"5.2": (3, 10), "6.0": (3, 12), "6.1": (3, 12)}
#: The lower bounds of setup.py's install_requires, tested by the `lowest` session.
LOWEST = [
    "Django==5.2.*",
    "channels==4.1.0",
    "djangorestframework==3.15.2",
    "daphne==4.1.0",
]
PYTEST = ["-m", "not slow", "-q", "-p", "no:cacheprovider"]

nox.options.sessions = ["tests", "lowest"]
nox.options.reuse_venv = "yes"
nox.needs_version = ">=2024.4.15"


def _find_interpreters() -> None:
    """Put pyenv's interpreters on PATH, and say which Pythons are missing."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob("3.1[0-9].*/bin"), reverse=True)
    os.environ["PATH"] = os.pathsep.join(
        [os.environ.get("PATH", ""), *(str(path) for path in found)]
    )
    for version in PYTHONS:
        if shutil.which(f"python{version}") is None:
            print(
                f"nox: Python {version} not found on PATH or in {root}; its sessions "
                f"will be skipped. Install it, e.g. with `pyenv install {version}`."
            )


_find_interpreters()


def _versions(session: nox.Session) -> None:
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, sys; print('Python', sys.version.split()[0],"
        " *(f'{n} {m.version(n)}' for n in ('Django', 'djangorestframework',"
        " 'channels', 'daphne', 'channels-redis')), sep=', ')",
        silent=False,
    )


@nox.session(python=PYTHONS)
@nox.parametrize("django", DJANGOS)
def tests(session: nox.Session, django: str) -> None:
    """The suite without its slow tests, on one Python and one Django."""
    needed = DJANGO_PYTHON[django]
    running = tuple(int(part) for part in session.python.split("."))
    if running < needed:
        session.skip(
            f"Django {django} needs Python {needed[0]}.{needed[1]} or later, "
            f"not {session.python}: not a supported combination"
        )
    session.install("-e", ".[test]", f"Django=={django}.*")
    _versions(session)
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The suite without its slow tests, with the lowest supported versions."""
    session.install("-e", ".[test]", *LOWEST)
    _versions(session)
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs)

"""The versions setup.py claims are the versions the matrix tests (noxfile.py)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def literals(path: Path) -> dict:
    """The literal values a module assigns to names, and the keyword arguments of
    its calls (setup.py's ``setup(...)``), by name."""
    values = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
        elif isinstance(node, ast.keyword) and node.arg:
            try:
                values[node.arg] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


SETUP = literals(ROOT / "setup.py")
NOX = literals(ROOT / "noxfile.py")


def requirement(name: str) -> str:
    (spec,) = [r for r in SETUP["install_requires"] if re.match(rf"{name}\b", r, re.I)]
    return spec[len(name) :]


def test_classifiers_name_the_tested_pythons_and_djangos():
    classifiers = SETUP["classifiers"]
    pythons = [c.rsplit(" ", 1)[1] for c in classifiers if re.search(r":: 3\.\d+$", c)]
    djangos = [c.rsplit(" ", 1)[1] for c in classifiers if "Django :: " in c]
    assert pythons == NOX["PYTHONS"]
    assert djangos == NOX["DJANGOS"]
    assert "Framework :: Django" in classifiers
    assert SETUP["python_requires"] == f">={NOX['PYTHONS'][0]}"


def test_the_django_range_is_the_tested_releases():
    lowest, highest = NOX["DJANGOS"][0], NOX["DJANGOS"][-1]
    major, minor = highest.split(".")
    assert requirement("Django") == f">={lowest},<{major}.{int(minor) + 1}"
    assert set(NOX["DJANGO_PYTHON"]) == set(NOX["DJANGOS"])


def test_the_lowest_session_pins_the_lower_bounds():
    pins = dict(pin.split("==") for pin in NOX["LOWEST"])
    assert pins.pop("Django") == f"{NOX['DJANGOS'][0]}.*"
    for name, version in pins.items():
        assert requirement(name) == f">={version}", name
    assert len(pins) == len(SETUP["install_requires"]) - 1

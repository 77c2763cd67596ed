import time

import pytest
from django.contrib.auth import get_user_model

from channels_binding.testing import BindingCommunicator
from tests.asgi import application
from tests.servers import STARTED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item.started_at = time.monotonic()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the state and log of every server still
    running or started during the test."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for log_path, process, started_at in STARTED:
        running = process.poll() is None
        if not running and started_at < getattr(item, "started_at", 0):
            continue
        state = "running" if running else f"exited {process.returncode}"
        try:
            tail = log_path.read_text(errors="replace")[-6000:]
        except OSError as error:
            tail = f"(log unreadable: {error})"
        report.sections.append((f"server {log_path} ({state})", tail))


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        "staff", "staff@example.com", "pw", is_staff=True
    )


@pytest.fixture
def communicator():
    """``communicator(user=None, path="/ws/")``: a connected-on-enter client."""

    def make(user=None, path="/ws/"):
        client = BindingCommunicator(application, path)
        if user is not None:
            client.scope["user"] = user
        return client

    return make

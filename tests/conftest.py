import pytest
from django.contrib.auth import get_user_model

from channels_binding.testing import BindingCommunicator
from tests.asgi import application


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

"""The three exchanges of the original channels-binding README
(``shared/seeds/004_*.txt``), frame for frame."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture
def users(db):
    """102 users, as in the README's search reply (``count: 102``)."""
    password = make_password("pw")
    User.objects.bulk_create(
        User(
            username=f"user{i:03d}", email=f"user{i:03d}@example.com", password=password
        )
        for i in range(102)
    )
    return list(User.objects.order_by("pk"))


def public(user):
    return {"id": user.pk, "username": user.username, "email": user.email}


async def test_search_page_2(communicator, users):
    async with communicator() as client:
        await client.send_json_to({"event": "auth.User.search", "data": {"page": 2}})
        reply = await client.receive_json_from()
    assert reply == {
        "event": "auth.User.search",
        "data": {
            "page": 2,
            "limit": 25,
            "count": 102,
            "rows": [public(user) for user in users[25:50]],
        },
    }


async def test_retrieve(communicator, users):
    admin = users[7]
    async with communicator() as client:
        await client.send_json_to(
            {"event": "auth.User.retrieve", "data": {"id": admin.pk}}
        )
        reply = await client.receive_json_from()
    assert reply == {
        "event": "auth.User.retrieve",
        "data": {"id": admin.pk, "username": "user007", "email": "user007@example.com"},
    }


async def test_save(communicator, users):
    admin = users[0]
    async with communicator(admin) as client:
        await client.send_json_to(
            {
                "event": "auth.User.save",
                "data": {"id": admin.pk, "username": "Changed Username"},
            }
        )
        reply = await client.receive_json_from()
    assert reply == {
        "event": "auth.User.save",
        "data": {"success": True, "id": admin.pk},
    }
    await sync_to_async(admin.refresh_from_db)()
    assert admin.username == "Changed Username"
    assert admin.email == "user000@example.com"
    assert await sync_to_async(User.objects.count)() == 102

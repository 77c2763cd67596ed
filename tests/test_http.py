"""The HTTP side (SPEC section 6): every route and every error status, each answer
compared with what the websocket sends for the same event and data.

HTTP calls go through DRF's ``APIClient``; from async tests they run with
``sync_to_async``, so the websocket and HTTP sides share one database and one hub.
"""

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.shop.models import Category, Note, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

CSRF_SECRET = "a" * 32  # a valid CSRF secret: 32 alphanumeric characters


@pytest.fixture
def catalog(db):
    office = Category.objects.create(name="Office")
    garden = Category.objects.create(name="Garden")
    blue = Tag.objects.create(name="blue")
    products = {}
    for name, price, category, description, in_stock in [
        ("Pen", "1.50", office, "blue ink pen", True),
        ("Shovel", "25.00", garden, "steel blade", True),
        ("Eraser", "1.50", office, "rubber", False),
        ("Hose", "12.00", garden, "green garden hose", True),
    ]:
        products[name] = Product.objects.create(
            name=name,
            price=Decimal(price),
            category=category,
            description=description,
            in_stock=in_stock,
        )
    products["Pen"].tags.add(blue)
    return {"office": office.pk, "garden": garden.pk, **products}


def token_client(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def alice(user):
    """An APIClient authenticated as ``user`` with a DRF token."""
    return token_client(user)


async def ws(communicator, event, data=None, user=None):
    """The websocket's reply to one event, without the request_id the
    communicator added (REST calls have none)."""
    async with communicator(user) as client:
        reply = await client.request(event, data)
    assert reply.pop("request_id") == 1
    return reply


async def ws_raw(communicator, text):
    """The websocket's answer to one raw text frame."""
    async with communicator() as client:
        await client.send_to(text_data=text)
        return await client.receive_json_from()


async def http(client, method, path, body=None):
    """``client.<method>(path, body)`` from async code, with a JSON body."""
    send = getattr(client, method)
    if body is None:
        return await sync_to_async(send)(path)
    return await sync_to_async(send)(path, body, format="json")


async def http_raw(client, path, text, content_type="application/json"):
    body = text.encode() if isinstance(text, str) else text
    return await sync_to_async(client.generic)(
        "POST", path, body, content_type=content_type
    )


def assert_same(response, reply):
    """The HTTP answer is the websocket frame, with the error's status (or 200)."""
    status = reply["error"]["status"] if "error" in reply else 200
    assert response["Content-Type"] == "application/json"
    assert (response.status_code, response.json()) == (status, reply)


def count(model):
    return sync_to_async(model.objects.count)()


# -- reads: REST routes and query parameters ----------------------------------------


async def test_reads_and_query_parameters_answer_like_the_websocket(
    communicator, catalog
):
    pen, office, garden = catalog["Pen"].pk, catalog["office"], catalog["garden"]
    cases = [
        ("/api/shop/Product/", "shop.Product.list", {}),
        ("/api/shop/Product", "shop.Product.list", {}),
        (
            "/api/shop/Product/?page=2&limit=2",
            "shop.Product.list",
            {"page": 2, "limit": 2},
        ),
        (
            "/api/shop/Product/?ordering=-price,name",
            "shop.Product.list",
            {"ordering": ["-price", "name"]},
        ),
        ("/api/shop/Product/?query=blue", "shop.Product.search", {"query": "blue"}),
        (
            "/api/shop/Product/?query=garden&in_stock=True&ordering=name",
            "shop.Product.search",
            {"query": "garden", "filters": {"in_stock": True}, "ordering": "name"},
        ),
        (
            "/api/shop/Product/?in_stock=true",
            "shop.Product.list",
            {"filters": {"in_stock": True}},
        ),
        (
            "/api/shop/Product/?in_stock=FALSE",
            "shop.Product.list",
            {"filters": {"in_stock": False}},
        ),
        (
            f"/api/shop/Product/?category__in={office},{garden}&price__lt=10",
            "shop.Product.list",
            {"filters": {"category__in": [office, garden], "price__lt": 10}},
        ),
        (
            f"/api/shop/Product/?category__in={office}&category__in={garden}",
            "shop.Product.list",
            {"filters": {"category__in": [office, garden]}},
        ),
        ("/api/shop/Category/?query=off", "shop.Category.search", {"query": "off"}),
        (f"/api/shop/Product/{pen}/", "shop.Product.retrieve", {"id": pen}),
        ("/api/pkgapp/greetings/", "pkgapp.greetings.list", {}),
        # errors: 400 invalid, 404 not_found, 404 unknown_event, 405
        ("/api/shop/Product/?limit=0", "shop.Product.list", {"limit": 0}),
        ("/api/shop/Product/?page=x", "shop.Product.list", {"page": "x"}),
        ("/api/shop/Product/?page=9", "shop.Product.list", {"page": 9}),
        (
            "/api/shop/Product/?bogus=1",
            "shop.Product.list",
            {"filters": {"bogus": "1"}},
        ),
        (
            "/api/shop/Product/?in_stock=maybe",
            "shop.Product.list",
            {"filters": {"in_stock": "maybe"}},
        ),
        (
            "/api/shop/Product/?ordering=description",
            "shop.Product.list",
            {"ordering": "description"},
        ),
        ("/api/shop/Product/999999/", "shop.Product.retrieve", {"id": 999999}),
        ("/api/shop/Product/abc/", "shop.Product.retrieve", {"id": "abc"}),
        ("/api/tools/", "tools.list", {}),
        ("/api/shop/Tag/?query=x", "shop.Tag.search", {"query": "x"}),
    ]
    client = APIClient()
    for path, event, data in cases:
        response = await http(client, "get", path)
        assert_same(response, await ws(communicator, event, data))


async def test_list_filters_and_orders_over_http(catalog):
    client = APIClient()
    response = await http(
        client, "get", "/api/shop/Product/?in_stock=True&ordering=-price"
    )
    assert [row["name"] for row in response.json()["data"]["rows"]] == [
        "Shovel",
        "Hose",
        "Pen",
    ]
    response = await http(client, "get", "/api/shop/Product/?query=garden")
    assert [row["name"] for row in response.json()["data"]["rows"]] == ["Hose"]
    response = await http(client, "get", "/api/shop/Product/?limit=1&page=3")
    assert response.json()["data"] | {"rows": None} == {
        "page": 3,
        "limit": 1,
        "count": 4,
        "rows": None,
    }
    assert response.json()["data"]["rows"][0]["name"] == "Eraser"


async def test_undeclared_filter_is_a_400_naming_it(catalog):
    response = await http(APIClient(), "get", "/api/shop/Product/?description=rubber")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["detail"]) == ["description"]


# -- writes ---------------------------------------------------------------------------


async def test_create_update_save_delete_answer_like_the_websocket(
    communicator, catalog, user, alice
):
    # create: the reply's data is what the websocket retrieves for the new row
    body = {"name": "Lamp", "price": "9.50", "category_id": catalog["office"]}
    body["tags"] = ["blue"]
    response = await http(alice, "post", "/api/shop/Product/", body)
    assert response.status_code == 200, response.json()
    created = response.json()
    assert created["event"] == "shop.Product.create"
    assert created["data"]["category"] == {"id": catalog["office"], "name": "Office"}
    pk = created["data"]["id"]
    retrieved = await ws(communicator, "shop.Product.retrieve", {"id": pk})
    assert retrieved["data"] == created["data"]

    # update (PATCH): the same change over the websocket answers the same JSON
    response = await http(alice, "patch", f"/api/shop/Product/{pk}/", {"price": "8"})
    assert response.json()["data"]["price"] == "8.00"
    again = await ws(
        communicator, "shop.Product.update", {"id": pk, "price": "8"}, user
    )
    assert_same(response, again)

    # save through its event route
    response = await http(alice, "post", "/api/shop/Product/save/", {"id": pk})
    assert_same(response, await ws(communicator, "shop.Product.save", {"id": pk}, user))
    assert response.json()["data"] == {"success": True, "id": pk}

    # delete, then the same delete is a 404 on both sides
    response = await http(alice, "delete", f"/api/shop/Product/{pk}/")
    assert_same(
        response, {"event": "shop.Product.delete", "data": {"success": True, "id": pk}}
    )
    assert not await sync_to_async(Product.objects.filter(pk=pk).exists)()
    response = await http(alice, "delete", f"/api/shop/Product/{pk}/")
    assert_same(
        response, await ws(communicator, "shop.Product.delete", {"id": pk}, user)
    )
    assert response.status_code == 404


async def test_invalid_writes_answer_like_the_websocket(
    communicator, catalog, user, alice
):
    before = await count(Product)
    bad = {"name": "", "price": -1}
    response = await http(alice, "post", "/api/shop/Product/", bad)
    assert_same(response, await ws(communicator, "shop.Product.create", bad, user))
    assert set(response.json()["error"]["detail"]) == {"name", "price"}
    pen = catalog["Pen"].pk
    response = await http(alice, "patch", f"/api/shop/Product/{pen}/", {"price": "x"})
    reply = await ws(
        communicator, "shop.Product.update", {"id": pen, "price": "x"}, user
    )
    assert_same(response, reply)
    assert response.status_code == 400
    assert await count(Product) == before


async def test_put_is_a_full_update_and_patch_a_partial_one(catalog, alice):
    pen = catalog["Pen"]
    response = await http(alice, "put", f"/api/shop/Product/{pen.pk}/", {"name": "P"})
    assert response.status_code == 400
    assert response.json() == {
        "event": "shop.Product.update",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {"price": ["This field is required."]},
        },
    }
    response = await http(alice, "patch", f"/api/shop/Product/{pen.pk}/", {"name": "P"})
    assert response.status_code == 200
    assert response.json()["data"]["price"] == "1.50"
    full = {"name": "Pencil", "price": "2.00"}
    response = await http(alice, "put", f"/api/shop/Product/{pen.pk}/", full)
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "Pencil"
    await sync_to_async(pen.refresh_from_db)()
    assert (pen.name, pen.price) == ("Pencil", Decimal("2.00"))


async def test_the_path_names_the_object_whatever_the_body_says(catalog, alice):
    pen, hose = catalog["Pen"], catalog["Hose"]
    response = await http(
        alice, "patch", f"/api/shop/Product/{pen.pk}/", {"id": hose.pk, "name": "X"}
    )
    assert response.json()["data"]["id"] == pen.pk
    await sync_to_async(hose.refresh_from_db)()
    assert hose.name == "Hose"


# -- authentication -----------------------------------------------------------------


async def test_anonymous_writes_are_401_and_change_nothing(communicator, catalog):
    pen = catalog["Pen"].pk
    client = APIClient()
    before = await sync_to_async(list)(Product.objects.values().order_by("pk"))
    product = {"name": "x", "price": 1}
    writes = [
        ("post", "/api/shop/Product/", product, "shop.Product.create", product),
        (
            "patch",
            f"/api/shop/Product/{pen}/",
            {"name": "x"},
            "shop.Product.update",
            {"id": pen, "name": "x"},
        ),
        (
            "put",
            f"/api/shop/Product/{pen}/",
            product,
            "shop.Product.update",
            {"id": pen, **product},
        ),
        (
            "delete",
            f"/api/shop/Product/{pen}/",
            None,
            "shop.Product.delete",
            {"id": pen},
        ),
        ("post", "/api/shop/Product/save/", product, "shop.Product.save", product),
        ("post", "/api/shop/Product/restock/", {}, "shop.Product.restock", {}),
        (
            "post",
            "/api/events/",
            {"event": "shop.Product.create", "data": product},
            "shop.Product.create",
            product,
        ),
    ]
    for method, path, body, event, data in writes:
        response = await http(client, method, path, body)
        assert response.status_code == 401, (path, response.json())
        assert response["WWW-Authenticate"] == "Token"
        assert_same(response, await ws(communicator, event, data))
        assert response.json()["error"]["code"] == "not_authenticated"
    after = await sync_to_async(list)(Product.objects.values().order_by("pk"))
    assert after == before


def test_session_authentication_enforces_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"name": "Lamp", "price": "3"}
    # A GET needs no CSRF token; every POST does, even one that only reads.
    response = client.get("/api/shop/Note/")
    assert response.status_code == 200
    response = client.post("/api/events/", {"event": "tools.whoami"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert response.json()["error"]["detail"].startswith("CSRF Failed")

    response = client.post("/api/shop/Product/", body, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "event": "shop.Product.create",
        "error": {
            "status": 403,
            "code": "permission_denied",
            "detail": response.json()["error"]["detail"],
        },
    }
    assert "CSRF" in response.json()["error"]["detail"]
    assert not Product.objects.exists()

    client.cookies["csrftoken"] = CSRF_SECRET
    response = client.post(
        "/api/shop/Product/", body, format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )
    assert response.status_code == 200, response.json()
    assert Product.objects.get().name == "Lamp"
    response = client.post(
        "/api/tools/whoami/", format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )
    assert response.json()["data"] == {"user_id": user.pk, "transport": "http"}


def test_token_authentication(user, alice):
    response = alice.post("/api/tools/whoami/")
    assert response.json() == {
        "event": "tools.whoami",
        "data": {"user_id": user.pk, "transport": "http"},
    }
    response = alice.post(
        "/api/shop/Product/", {"name": "Lamp", "price": "3"}, format="json"
    )
    assert response.status_code == 200
    assert Product.objects.filter(name="Lamp").exists()


def test_a_bad_or_inactive_token_is_401(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get("/api/shop/Product/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "event": "shop.Product.list",
        "error": {
            "status": 401,
            "code": "not_authenticated",
            "detail": "Invalid token.",
        },
    }
    client = token_client(user)
    user.is_active = False
    user.save()
    response = client.post("/api/tools/whoami/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_http_authentication_classes_setting(user):
    user.set_password("pw")
    user.save()
    basic = {
        "HTTP_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.BasicAuthentication"
        ]
    }
    token = token_client(user)
    with override_settings(CHANNELS_BINDING=basic):
        # The token is not looked at any more: anonymous, asked for Basic.
        response = token.post("/api/shop/Product/", {}, format="json")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="api"'
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=")  # alice:pw
        response = client.post("/api/tools/whoami/")
        assert response.json()["data"]["user_id"] == user.pk
    session = {
        "HTTP_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.SessionAuthentication"
        ]
    }
    with override_settings(CHANNELS_BINDING=session):
        # No class offers a challenge: still a 401, without WWW-Authenticate.
        response = token.post("/api/shop/Product/", {}, format="json")
        assert response.status_code == 401
        assert "WWW-Authenticate" not in response


# -- permissions and visibility -------------------------------------------------------


async def test_permission_errors_and_server_errors_answer_like_the_websocket(
    communicator, catalog, user, alice
):
    cases = [
        # 403: IsAdminUser on a custom event
        (alice, "/api/shop/Product/admin_only/", "shop.Product.admin_only", user),
        # 405: an action the binding does not offer
        (alice, "/api/shop/Tag/", "shop.Tag.create", user),
        # 404 unknown_event: no such event on the stream
        (alice, "/api/shop/Product/nope/", "shop.Product.nope", user),
        (alice, "/api/tools/nope/", "tools.nope", user),
        # 500: the handler raises; no traceback, SQL or path leaks
        (APIClient(), "/api/shop/Product/boom/", "shop.Product.boom", None),
    ]
    for client, path, event, ws_user in cases:
        response = await http(client, "post", path, {"name": "x"})
        assert_same(response, await ws(communicator, event, {"name": "x"}, ws_user))
    assert response.status_code == 500
    assert response.json()["error"] == {
        "status": 500,
        "code": "server_error",
        "detail": "Server error.",
    }
    assert not await sync_to_async(Tag.objects.filter(name="x").exists)()


async def test_each_user_sees_only_their_notes(communicator, user, other_user):
    bob = await sync_to_async(token_client)(other_user)
    alice = await sync_to_async(token_client)(user)
    response = await http(alice, "post", "/api/shop/Note/", {"text": "mine"})
    assert response.status_code == 200
    note = response.json()["data"]
    assert note == {"id": note["id"], "text": "mine", "owner": user.pk}
    for path, event, data in [
        ("/api/shop/Note/", "shop.Note.list", {}),
        (f"/api/shop/Note/{note['id']}/", "shop.Note.retrieve", {"id": note["id"]}),
    ]:
        for client, who in [(alice, user), (bob, other_user)]:
            response = await http(client, "get", path)
            assert_same(response, await ws(communicator, event, data, who))
    assert (await http(bob, "get", "/api/shop/Note/")).json()["data"]["count"] == 0
    response = await http(bob, "delete", f"/api/shop/Note/{note['id']}/")
    assert response.status_code == 404
    assert await count(Note) == 1
    response = await http(APIClient(), "get", "/api/shop/Note/")
    assert response.status_code == 401


# -- custom events --------------------------------------------------------------------


async def test_custom_events_get_the_user_and_the_body(communicator, catalog, alice):
    response = await http(alice, "post", "/api/shop/Product/echo/", {"x": [1, "é"]})
    assert response.json() == {
        "event": "shop.Product.echo",
        "data": {"data": {"x": [1, "é"]}, "hash": None, "event": "shop.Product.echo"},
    }
    assert_same(response, await ws(communicator, "shop.Product.echo", {"x": [1, "é"]}))
    response = await http(alice, "post", "/api/shop/Product/stats/")
    assert response.json()["data"] == {"count": 4, "user": "alice"}
    response = await http(alice, "post", "/api/tools/add/", {"a": 2, "b": 3})
    assert_same(response, await ws(communicator, "tools.add", {"a": 2, "b": 3}))
    response = await http(alice, "post", "/api/tools/add/", {"a": "2"})
    assert_same(response, await ws(communicator, "tools.add", {"a": "2"}))
    # the longest registered stream wins: pkgapp.greetings, event hello
    response = await http(alice, "post", "/api/pkgapp/greetings/hello/", {"name": "x"})
    assert response.json() == {
        "event": "pkgapp.greetings.hello",
        "data": {"greeting": "hello x"},
    }
    # a handler's notify_self has no connection to send to over HTTP
    response = await http(alice, "post", "/api/tools/progress/")
    assert response.json()["data"] == {"done": True, "notified": False}
    response = await http(alice, "post", "/api/shop/Product/restock/")
    assert response.json()["data"] == {"updated": 4}


# -- events/ --------------------------------------------------------------------------


async def test_events_endpoint_answers_every_frame_like_the_websocket(
    communicator, catalog
):
    pen = catalog["Pen"].pk
    frames = [
        '{"event": "tools.add", "data": {"a": 1, "b": 2}, "request_id": "r1"}',
        '{"event": "tools.add", "data": {"a": "x"}, "request_id": [1, {"k": null}]}',
        '{"event": "tools.add", "data": null, "request_id": null}',
        f'{{"event": "shop.Product.retrieve#{pen}", "request_id": 2}}',
        f'{{"event": "shop.Product.retrieve#tag", "data": {{"id": {pen}}}}}',
        '{"event": "shop.Product.list", "data": {"filters": {"in_stock": false}}}',
        '{"event": "shop.Product.echo#x", "data": {"y": 1.5}}',
        '{"event": "shop.Product.create", "data": {"name": "x"}, "request_id": 3}',
        '{"event": "nope.list", "request_id": 7}',
        '{"event": "shop.Product.boom"}',
        # parse errors
        "{not json",
        "[1]",
        '"text"',
        " ",
        '{"data": {}}',
        '{"event": ""}',
        '{"event": 5, "request_id": 1}',
        '{"event": "tools.add", "data": [1], "request_id": 4}',
        '{"event": "tools.add", "data": {"a": NaN}}',
        '{"event": "tools.add", "data": {"a": 1e999, "b": 1}}',
    ]
    client = APIClient()
    for text in frames:
        response = await http_raw(client, "/api/events/", text)
        assert_same(response, await ws_raw(communicator, text))
    assert response.json()["error"]["code"] == "parse_error"
    response = await http_raw(client, "/api/events/", "")
    assert (response.status_code, response.json()) == (
        400,
        {
            "event": None,
            "error": {
                "status": 400,
                "code": "parse_error",
                "detail": "Frame is not valid JSON.",
            },
        },
    )


async def test_too_large_and_undecodable_bodies(communicator, catalog, alice):
    text = json.dumps({"event": "tools.add", "data": {"a": "x" * 300}})
    with override_settings(CHANNELS_BINDING={"MAX_FRAME_BYTES": 200}):
        response = await http_raw(alice, "/api/events/", text)
        assert_same(response, await ws_raw(communicator, text))
        assert response.status_code == 413
        response = await http_raw(
            alice, "/api/shop/Product/", json.dumps({"n": "x" * 300})
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
    response = await http_raw(alice, "/api/events/", b'{"event": "\xff"}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


async def test_rest_bodies_are_read_like_frames(catalog, alice):
    for body in ["[1]", '"x"', "{bad", '{"price": NaN}', b"\xff"]:
        for path in ["/api/shop/Product/", "/api/shop/Product/save/"]:
            response = await http_raw(alice, path, body)
            event = (
                "shop.Product.create"
                if path.endswith("Product/")
                else ("shop.Product.save")
            )
            assert response.status_code == 400, body
            assert response.json()["event"] == event
            assert response.json()["error"]["code"] == "parse_error"
    # any content type is read as JSON; an empty body is {}
    body = '{"name": "Lamp", "price": "2"}'
    response = await http_raw(alice, "/api/shop/Product/", body, "text/plain")
    assert response.status_code == 200
    response = await http_raw(alice, "/api/shop/Product/", "", "")
    assert set(response.json()["error"]["detail"]) == {"name", "price"}
    assert await count(Product) == 5


def test_connection_events_are_websocket_only(db):
    for event in ["ping", "ping#x", "connection", "authorize#y", "notify.users"]:
        response = APIClient().post("/api/events/", {"event": event}, format="json")
        assert response.status_code == 404
        assert response.json()["event"] == event
        assert response.json()["error"]["code"] == "unknown_event"


# -- subscriptions ---------------------------------------------------------------------


def test_subscribe_and_unsubscribe_are_405_over_http(catalog, alice):
    pen = catalog["Pen"].pk
    detail = (
        "Subscriptions need a websocket connection; over HTTP, poll with "
        "retrieve, list or search."
    )
    for action in ["subscribe", "unsubscribe"]:
        event = f"shop.Product.{action}"
        for data in [{"id": pen}, {"filters": {"in_stock": True}}, {}]:
            frame = {"event": event, "data": data, "request_id": 1}
            response = alice.post("/api/events/", frame, format="json")
            assert response.status_code == 405
            assert response.json() == {
                "event": event,
                "error": {
                    "status": 405,
                    "code": "method_not_allowed",
                    "detail": detail,
                },
                "request_id": 1,
            }
            response = alice.post(f"/api/shop/Product/{action}/", data, format="json")
            assert response.status_code == 405
            assert response.json() == {
                "event": event,
                "error": {
                    "status": 405,
                    "code": "method_not_allowed",
                    "detail": detail,
                },
            }


# -- routing ---------------------------------------------------------------------------


def test_unknown_routes_are_404_unknown_event(db):
    client = APIClient()
    for path in [
        "/api/nope/",
        "/api/shop/",
        "/api/shop/Nope/1/",
        "/api/shop/Product/1/2/",
    ]:
        for method in ["get", "post", "delete"]:
            response = getattr(client, method)(path)
            assert response.status_code == 404, path
            body = response.json()
            assert body["event"] is None
            assert body["error"]["code"] == "unknown_event"
            assert path.strip("/").removeprefix("api/") in body["error"]["detail"]


def test_wrong_methods_are_405_with_allow(db):
    client = APIClient()
    for method, path, allow in [
        ("put", "/api/shop/Product/", "GET, POST"),
        ("patch", "/api/shop/Product/", "GET, POST"),
        ("delete", "/api/shop/Product/", "GET, POST"),
        ("get", "/api/events/", "POST"),
        ("put", "/api/events/", "POST"),
        ("post", "/api/openapi.json", "GET"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 405, (method, path)
        assert response["Allow"] == allow
        assert response.json() == {
            "event": None,
            "error": {
                "status": 405,
                "code": "method_not_allowed",
                "detail": f'Method "{method.upper()}" not allowed.',
            },
        }


def test_format_and_accept_do_not_change_the_answer(catalog):
    client = APIClient()
    response = client.get("/api/shop/Product/?format=api", HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    assert list(response.json()["error"]["detail"]) == ["format"]
    response = client.get("/api/shop/Product/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    response = client.head("/api/shop/Product/")
    assert response.status_code == 200


# -- live data -------------------------------------------------------------------------


async def test_an_http_patch_is_pushed_to_websocket_watchers(
    communicator, catalog, alice
):
    pen = catalog["Pen"].pk
    async with communicator() as watcher:
        await watcher.request("shop.Product.retrieve", {"id": pen})
        response = await http(
            alice, "patch", f"/api/shop/Product/{pen}/", {"price": "4"}
        )
        assert response.status_code == 200
        push = await watcher.receive_json_from(3)
    assert push == {"event": "shop.Product.retrieve", "data": response.json()["data"]}
    assert push["data"]["price"] == "4.00"


async def test_an_http_create_is_pushed_to_list_watchers(communicator, catalog, alice):
    async with communicator() as watcher:
        await watcher.request("shop.Product.list#all", {"filters": {"in_stock": True}})
        body = {"name": "Lamp", "price": "3"}
        response = await http(alice, "post", "/api/shop/Product/", body)
        push = await watcher.receive_json_from(3)
    assert push == {
        "event": "shop.Product.retrieve#all",
        "data": response.json()["data"],
    }


# -- OpenAPI ---------------------------------------------------------------------------


def test_openapi_describes_every_stream_and_event(db):
    from channels_binding.registry import registry

    response = APIClient().get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert {"openapi", "info", "paths", "components", "tags"} <= set(document)
    assert document["openapi"].startswith("3.1")
    assert {"title", "version"} <= set(document["info"])
    tags = {tag["name"]: tag for tag in document["tags"]}
    streams = [binding.stream for binding in registry]
    assert set(tags) == set(streams) and len(streams) >= 6
    examples = document["paths"]["/api/events/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["event"]["examples"]
    for binding in registry:
        events = [f"{binding.stream}.{name}" for name in binding.events]
        assert tags[binding.stream]["x-events"] == events
        assert set(events) <= set(examples)
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for key, operation in item.items()
        if key != "parameters"
    ]
    assert len(operation_ids) == len(set(operation_ids))
    for event in ["shop.Product.stats", "tools.add", "pkgapp.greetings.hello"]:
        assert event in operation_ids
    product = document["paths"]["/api/shop/Product/"]
    names = [parameter["name"] for parameter in product["get"]["parameters"]]
    assert names == [
        "page",
        "limit",
        "ordering",
        "query",
        "in_stock",
        "category",
        "category__in",
        "price",
        "price__lt",
        "price__gt",
    ]
    assert set(document["paths"]["/api/shop/Product/{pk}/"]) == {
        "parameters",
        "get",
        "put",
        "patch",
        "delete",
    }
    # Tag allows only retrieve and list: nothing else is described
    assert set(document["paths"]["/api/shop/Tag/"]) == {"get"}
    assert set(document["paths"]["/api/shop/Tag/{pk}/"]) == {"parameters", "get"}
    assert set(document["components"]["securitySchemes"]) == {"session", "token"}


def test_every_described_operation_answers_its_event(catalog):
    """Each documented route reaches the event its operationId names."""
    client = APIClient()
    document = client.get("/api/openapi.json").json()
    pk = str(catalog["Hose"].pk)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path == "/api/events/":
                continue
            response = getattr(client, method)(path.replace("{pk}", pk))
            event = operation["operationId"].removesuffix(".full")
            assert response.json()["event"] == event, (method, path)
            assert response.json().get("error", {}).get("code") != "unknown_event"

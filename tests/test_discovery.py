"""Discovery of bindings, streams, the `bindings` command, settings and checks."""

import io

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.registry import autodiscover, registry
from channels_binding.settings import binding_settings
from tests.shop.models import Category, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}


@pytest.fixture
def temporary_stream():
    """Unregister whatever stream a test registers, so it leaves nothing behind."""
    streams = []
    yield streams.append
    for stream in streams:
        registry.unregister(stream)


def test_every_source_of_bindings_is_discovered():
    streams = {binding.stream for binding in registry}
    # app bindings.py, a bindings/ package, and a BINDINGS_MODULES module
    assert {"shop.Product", "shop.Note", "tools", "pkgapp.greetings"} <= streams
    assert "auth.User" in streams


async def test_bindings_package_module_answers(communicator):
    async with communicator() as client:
        reply = await client.request("pkgapp.greetings.hello", {"name": "ada"})
    assert reply["data"] == {"greeting": "hello ada"}


def test_stream_defaults_to_app_label_and_model_name():
    assert registry.get("shop.Product").model is Product
    assert registry.get("shop.Product").__name__ == "ProductBinding"


def test_two_bindings_on_one_stream_is_an_error_naming_both():
    with pytest.raises(ImproperlyConfigured) as info:

        class AnotherCategoryBinding(AsyncBinding):
            model = Category

    message = str(info.value)
    assert "tests.shop.bindings.CategoryBinding" in message
    assert "AnotherCategoryBinding" in message
    assert registry.get("shop.Category").__name__ == "CategoryBinding"


def test_explicit_stream_lets_a_second_binding_share_a_model(temporary_stream):
    class CheapProducts(AsyncBinding):
        model = Product
        stream = "shop.cheap"
        fields = ["id", "name"]

    temporary_stream("shop.cheap")
    assert registry.get("shop.cheap") is CheapProducts
    assert registry.get("shop.Product").__name__ == "ProductBinding"


def test_binding_without_model_or_stream_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="neither a `model` nor a `stream`"):

        class Nothing(AsyncBinding):
            @bind("x")
            def x(self, request):
                return {}


def test_bind_rejects_names_that_cannot_be_events():
    for name in ("", "a.b", "a#b", "_private"):
        with pytest.raises(ValueError):
            bind(name)


def test_unknown_action_in_actions_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="unknown actions"):

        class Odd(AsyncBinding):
            model = Tag
            stream = "shop.odd"
            actions = ("retrieve", "explode")


def test_import_error_in_a_bindings_module_is_raised():
    modules = {"BINDINGS_MODULES": ["tests.broken_bindings"]}
    with override_settings(CHANNELS_BINDING=modules):
        with pytest.raises(ImportError, match="on purpose"):
            autodiscover()


def test_missing_bindings_module_is_a_clear_error():
    modules = {"BINDINGS_MODULES": ["tests.no_such_module"]}
    with override_settings(CHANNELS_BINDING=modules):
        with pytest.raises(ImproperlyConfigured, match="tests.no_such_module"):
            autodiscover()


def test_autodiscover_twice_is_harmless():
    before = {binding.stream: binding for binding in registry}
    autodiscover()
    assert {binding.stream: binding for binding in registry} == before


def test_management_command_lists_streams_events_and_permissions():
    out = io.StringIO()
    call_command("bindings", stdout=out, no_color=True)
    lines = out.getvalue().splitlines()
    default = "[rest_framework.permissions.IsAuthenticatedOrReadOnly]"
    assert f"  shop.Product.retrieve  {default}" in lines
    assert f"  shop.Product.delete  {default}" in lines
    assert (
        "  shop.Product.admin_only  [rest_framework.permissions.IsAdminUser]" in lines
    )
    assert "  tools.add  [rest_framework.permissions.AllowAny]" in lines
    assert "  shop.Note.list  [rest_framework.permissions.IsAuthenticated]" in lines
    tag_events = [line for line in lines if line.startswith("  shop.Tag.")]
    assert [line.split()[0] for line in tag_events] == [
        "shop.Tag.list",
        "shop.Tag.retrieve",
    ]
    assert any(line.startswith("shop.Product  (tests.shop.bindings.") for line in lines)


def test_settings_are_read_lazily_and_follow_override_settings():
    assert binding_settings.DEFAULT_PAGE_SIZE == 25
    with override_settings(CHANNELS_BINDING={**ROOT, "DEFAULT_PAGE_SIZE": 7}):
        assert binding_settings.DEFAULT_PAGE_SIZE == 7
    assert binding_settings.DEFAULT_PAGE_SIZE == 25


def test_old_spelling_of_authentication_classes_is_accepted():
    path = "channels_binding.authentication.ScopeUserAuthentication"
    with override_settings(
        CHANNELS_BINDING={**ROOT, "AUTHENTIFICATION_CLASSES": [path]}
    ):
        classes = binding_settings.AUTHENTICATION_CLASSES
    assert [c.__name__ for c in classes] == ["ScopeUserAuthentication"]


def test_unimportable_class_in_settings_names_the_key():
    bad = {**ROOT, "DEFAULT_PERMISSION_CLASSES": ["nowhere.Nothing"]}
    with override_settings(CHANNELS_BINDING=bad):
        with pytest.raises(ImportError, match="DEFAULT_PERMISSION_CLASSES"):
            _ = binding_settings.DEFAULT_PERMISSION_CLASSES


def test_unknown_setting_key_is_an_attribute_error_and_a_check_warning():
    with pytest.raises(AttributeError):
        _ = binding_settings.NO_SUCH_KEY
    with override_settings(CHANNELS_BINDING={**ROOT, "DEFAULT_PAGESIZE": 3}):
        ids = [message.id for message in run_checks()]
    assert "channels_binding.W002" in ids


def test_check_warns_about_a_binding_without_field_list(temporary_stream):
    assert "channels_binding.W001" not in [m.id for m in run_checks()]

    class Everything(AsyncBinding):
        model = Tag
        stream = "shop.everything"

    temporary_stream("shop.everything")
    messages = [m for m in run_checks() if m.id == "channels_binding.W001"]
    assert [m.obj for m in messages] == [Everything]


def test_check_errors_on_undeclarable_field_names(temporary_stream):
    class Misspelt(AsyncBinding):
        model = Product
        stream = "shop.misspelt"
        fields = ["id"]
        search_fields = ["^nmae"]
        ordering_fields = ["price", "category__title"]

    temporary_stream("shop.misspelt")
    errors = [m.msg for m in run_checks() if m.id == "channels_binding.E001"]
    assert len(errors) == 2
    assert any("'nmae'" in msg for msg in errors)
    assert any("'category__title'" in msg for msg in errors)


async def test_binding_with_only_model_hides_default_excluded_fields(
    communicator, user, temporary_stream
):
    from django.contrib.auth import get_user_model

    class Users(AsyncBinding):
        model = get_user_model()
        stream = "auth.all_fields"

    temporary_stream("auth.all_fields")
    async with communicator() as client:
        reply = await client.request("auth.all_fields.retrieve", {"id": user.pk})
    assert reply["data"]["username"] == "alice"
    assert "password" not in reply["data"]
    assert "last_login" in reply["data"]


def test_check_warns_without_a_channel_layer():
    assert "channels_binding.W003" not in [m.id for m in run_checks()]
    with override_settings(CHANNEL_LAYERS={}):
        assert "channels_binding.W003" in [m.id for m in run_checks()]


def test_check_warns_about_redis_hosts_without_socket_timeout():
    redis = "channels_redis.core.RedisChannelLayer"
    bare = {"default": {"BACKEND": redis, "CONFIG": {"hosts": ["redis://x:1/0"]}}}
    with override_settings(CHANNEL_LAYERS=bare):
        assert "channels_binding.W004" in [m.id for m in run_checks()]
    host = {"address": "redis://x:1/0", "socket_timeout": 15}
    timed = {"default": {"BACKEND": redis, "CONFIG": {"hosts": [host]}}}
    with override_settings(CHANNEL_LAYERS=timed):
        assert "channels_binding.W004" not in [m.id for m in run_checks()]

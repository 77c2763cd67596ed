"""The demo's streams: `catalog.Category`, `catalog.Product`, `catalog.Note` and the
custom events of `catalog.Bell`."""

import asyncio

from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser

from channels_binding import notify
from channels_binding.bindings import AsyncBinding, bind

from .models import Category, Note, Product
from .serializers import NoteSerializer, ProductSerializer


class CategoryBinding(AsyncBinding):
    """Read-only: categories are managed in the admin."""

    model = Category
    actions = ("retrieve", "list", "search", "subscribe", "unsubscribe")
    fields = ["id", "name"]
    search_fields = ["name"]
    ordering_fields = ["name"]


class ProductBinding(AsyncBinding):
    """Everybody reads and watches the catalogue; signed-in users edit it (the
    default permissions). The serializer refuses a negative price."""

    model = Product
    serializer_class = ProductSerializer
    select_related = ["category"]
    search_fields = ["name", "description"]
    filter_fields = ["category", "in_stock"]
    ordering_fields = ["name", "price", "created_at"]
    ordering = ["name", "id"]


class NoteBinding(AsyncBinding):
    """Private notes: `get_queryset()` shows each user their own rows, so a list,
    a push or an update by anyone else never reaches or touches them."""

    model = Note
    serializer_class = NoteSerializer
    select_related = ["owner"]
    search_fields = ["text"]
    filter_fields = ["done"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        user = self.request.user
        if not user.is_authenticated:
            return Note.objects.none()
        queryset = super().get_queryset()
        return queryset.filter(owner=user)


# Tasks started by `remind`, kept referenced until they finish.
_reminders: set[asyncio.Task] = set()


def _message(request) -> str:
    message = str(request.data.get("message", "")).strip()
    if not message:
        raise ValidationError({"message": ["Write a message."]})
    if len(message) > 200:
        raise ValidationError({"message": ["Keep it under 200 characters."]})
    return message


class BellBinding(AsyncBinding):
    """No model: custom events that show server code sending notifications."""

    stream = "catalog.Bell"

    @bind("ring")
    def ring(self, request):
        """Answer the caller's connection only (a plain `def`: runs in a thread)."""
        request.notify_self(
            {"message": f"Ding! The server rang this window, {request.user}."}
        )
        return {"rung": True}

    @bind("remind")
    async def remind(self, request):
        """Three seconds later, notify every window of the caller's user, as a
        Celery task or a management command would with `notify.users`."""
        user_pk = request.user.pk
        message = _message(request)

        async def later() -> None:
            await asyncio.sleep(3)
            await notify.ausers([user_pk], {"message": f"Reminder: {message}"})

        task = asyncio.get_running_loop().create_task(later())
        _reminders.add(task)
        task.add_done_callback(_reminders.discard)
        return {"in_seconds": 3}

    @bind("announce", permission_classes=[IsAdminUser])
    async def announce(self, request):
        """Staff only: a message to every connected window, signed-in or not."""
        sent = await notify.aall(
            {"message": f"Announcement from {request.user}: {_message(request)}"}
        )
        return {"sent": sent}

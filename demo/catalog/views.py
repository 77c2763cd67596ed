from django.contrib.auth import get_user_model
from django.views.generic import TemplateView


class DemoPage(TemplateView):
    """A page of the demo. Its scripts talk to the server over the websocket only;
    the view just renders the frame and the list of users (for the chat's names
    and the "notify a user" picker)."""

    page = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        users = get_user_model().objects.order_by("username")
        context["page"] = self.page
        context["demo_users"] = [{"id": u.pk, "username": u.username} for u in users]
        return context

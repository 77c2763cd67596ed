"""The ``users`` stack's binding (``CHANNELS_BINDING["BINDINGS_MODULES"]`` of that
stack alone): products as each user sees them. Its ``get_queryset()`` depends on
the user, so every user is a visibility key of their own, and a change is probed
and serialized once per user who watches it."""

from django.db.models import Q
from rest_framework.permissions import IsAuthenticated

from channels_binding.bindings import AsyncBinding

from .models import Product
from .serializers import ProductSerializer


class UserProductBinding(AsyncBinding):
    model = Product
    stream = "catalog.UserProduct"
    serializer_class = ProductSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        """The products in stock, and the user's own."""
        return Product.objects.filter(Q(in_stock=True) | Q(owner=self.request.user))

"""The HTTP baseline: a plain DRF ``ModelViewSet`` with the benchmark's serializer,
the policies channels-binding's REST routes have by default (session
authentication, ``IsAuthenticatedOrReadOnly``, JSON only, pages of 25)."""

from rest_framework import authentication, pagination, permissions, renderers
from rest_framework.routers import SimpleRouter
from rest_framework.viewsets import ModelViewSet

from .models import Product
from .serializers import ProductSerializer


class PageOf25(pagination.PageNumberPagination):
    page_size = 25


class ProductViewSet(ModelViewSet):
    queryset = Product.objects.order_by("pk")
    serializer_class = ProductSerializer
    authentication_classes = [authentication.SessionAuthentication]
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    renderer_classes = [renderers.JSONRenderer]
    pagination_class = PageOf25


router = SimpleRouter()
router.register("products", ProductViewSet)

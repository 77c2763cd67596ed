from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.mixins import RetrieveModelMixin
from djangochannelsrestframework.permissions import AllowAny

from ..models import Product
from ..serializers import ProductSerializer


class RetrieveConsumer(RetrieveModelMixin, GenericAsyncAPIConsumer):
    """``{"action": "retrieve", "pk": 1, "request_id": 7}``."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    permission_classes = (AllowAny,)

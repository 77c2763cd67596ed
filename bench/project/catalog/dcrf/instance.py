from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.observer.generics import ObserverModelInstanceMixin
from djangochannelsrestframework.permissions import AllowAny

from ..models import Product
from ..serializers import ProductSerializer


class InstanceConsumer(ObserverModelInstanceMixin, GenericAsyncAPIConsumer):
    """``{"action": "subscribe_instance", "pk": 1, "request_id": 7}``: on each change
    every subscriber checks permissions and re-runs ``retrieve`` (a query and a
    serialization) for itself."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    permission_classes = (AllowAny,)

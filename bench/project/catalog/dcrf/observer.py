from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.observer import model_observer
from djangochannelsrestframework.permissions import AllowAny

from ..models import Product
from ..serializers import ProductSerializer


class ObserverConsumer(GenericAsyncAPIConsumer):
    """``model_observer``: each change is serialized once, in the saving thread, and
    sent to one group that every subscriber joined; no per-user filtering."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    permission_classes = (AllowAny,)

    @model_observer(Product, serializer_class=ProductSerializer)
    async def product_activity(
        self, message, action=None, subscribing_request_ids=(), **kwargs
    ):
        for request_id in subscribing_request_ids:
            await self.reply(data=message, action=action, request_id=request_id)

    @action()
    async def subscribe_to_product_activity(self, request_id, **kwargs):
        await self.product_activity.subscribe(request_id=request_id)
        return {"subscribed": True}, 201

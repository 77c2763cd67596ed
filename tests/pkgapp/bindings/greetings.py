from rest_framework.permissions import AllowAny

from channels_binding.bindings import AsyncBinding, bind


class GreetingBinding(AsyncBinding):
    stream = "pkgapp.greetings"
    permission_classes = [AllowAny]

    @bind("hello", method="GET")
    def hello(self, request):
        return {"greeting": f"hello {request.data.get('name', 'world')}"}

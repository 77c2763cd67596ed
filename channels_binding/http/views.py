"""The HTTP transport: the same events as the websocket, answered by the same code.

Each view turns an HTTP request into a :class:`.BindingRequest`, runs it with
``GenericBinding.for_request(...).run()`` exactly as :class:`.SyncConsumer` does, and
answers with the frame the websocket would send (``protocol.reply`` or
``protocol.error``), with the error's ``status`` as the HTTP status. No action is
implemented here: only routing, body and query-string decoding, and authentication.

Routes (see ``channels_binding.urls``):

* ``POST events/`` takes a websocket frame as its body;
* ``<stream path>/`` (``shop/Product/``): ``GET`` list or search, ``POST`` create;
* ``<stream path>/<pk>/``: ``GET`` retrieve, ``PUT`` full update, ``PATCH`` partial
  update, ``DELETE`` delete; ``POST <stream path>/<event>/`` runs that event;
* ``GET openapi.json``: an OpenAPI 3.1 description built from the registry (see
  :mod:`.openapi`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework import authentication
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.parsers import BaseParser
from rest_framework.views import APIView, set_rollback

from ..bindings import GenericBinding
from ..events import protocol
from ..events.protocol import CONNECTION_EVENTS, BadFrame, Frame
from ..events.request import BindingRequest
from ..exceptions import FrameTooLarge, ParseError, ServerError, UnknownEvent
from ..registry import registry
from ..settings import binding_settings

logger = logging.getLogger("channels_binding")

#: Query parameters of a list that go to ``data`` as they are; every other one is
#: a filter.
LIST_PARAMETERS = ("page", "limit", "ordering", "query")
#: Filter lookups whose value is a list, sent as ``?category__in=1,2``.
LIST_LOOKUPS = ("__in", "__range")

COLLECTION_METHODS = ("GET", "POST")
ITEM_METHODS = ("GET", "PUT", "PATCH", "DELETE", "POST")
ITEM_ACTIONS = {"GET": "retrieve", "PUT": "update", "PATCH": "update"}


def http_authentication_classes() -> list[type]:
    """``HTTP_AUTHENTICATION_CLASSES``, or by default DRF's session authentication
    (CSRF enforced for session users), plus DRF's token authentication when
    ``rest_framework.authtoken`` is installed."""
    classes = binding_settings.HTTP_AUTHENTICATION_CLASSES
    if classes is not None:
        return list(classes)
    classes = [authentication.SessionAuthentication]
    if apps.is_installed("rest_framework.authtoken"):
        classes.append(authentication.TokenAuthentication)
    return classes


def load_body(raw: bytes) -> dict[str, Any]:
    """A request body as ``data``: a JSON object, read with the websocket's rules
    (no ``NaN``, no infinite numbers, no lone surrogates, at most
    ``MAX_FRAME_BYTES``). An empty body (or ``null``) is ``{}``."""
    max_bytes = binding_settings.MAX_FRAME_BYTES
    if len(raw) > max_bytes:
        raise FrameTooLarge(f"Body larger than {max_bytes} bytes.")
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        value = protocol.loads(text)  # the same rules as a websocket frame
    except (ValueError, RecursionError):
        raise ParseError("Body is not valid JSON.") from None
    if protocol.has_lone_surrogate(text, value):
        raise ParseError(protocol.LONE_SURROGATE)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError("Body must be a JSON object.")
    return value


class JSONBodyParser(BaseParser):
    """Reads any body as JSON with :func:`load_body`, so DRF's ``request.data`` (which
    its CSRF check reads) agrees with what the views read and never answers 415."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return load_body(stream.read())


class BindingAPIView(APIView):
    """What both event views share: authentication, running a binding, and answering
    with a frame. Subclass it to change ``authentication_classes``; permissions are
    the bindings' (the same classes as on the websocket), so the view has none."""

    #: ``None``: ``CHANNELS_BINDING["HTTP_AUTHENTICATION_CLASSES"]``.
    authentication_classes: list | tuple | None = None
    permission_classes: list | tuple = []
    throttle_classes: list | tuple = []
    parser_classes = [JSONBodyParser]
    metadata_class = None

    #: The frame being answered, echoed by the reply or the error.
    frame: Frame | None = None
    #: The methods the route answers (the ``Allow`` header).
    allowed: tuple[str, ...] = ()

    def get_authenticators(self) -> list:
        classes = self.authentication_classes
        if classes is None:
            classes = http_authentication_classes()
        return [auth_class() for auth_class in classes]

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        # DRF negotiates a renderer here (the answer is always JSON, so ``?format=``
        # and ``Accept`` change nothing), then authenticates and checks the view's
        # permissions and throttles: ``run`` does that once it knows the event, so
        # that an authentication error names it.
        self.format_kwarg = None

    def run(self, request, frame: Frame, method: str | None = None) -> HttpResponse:
        """Answer ``frame`` with the binding that serves its stream."""
        self.frame = frame
        self.perform_authentication(request)
        self.check_permissions(request)
        self.check_throttles(request)
        binding_request = BindingRequest.from_frame(
            frame,
            user=request.user,
            auth=request.auth,
            method=method,
            transport="http",
            http_request=request,
        )
        data = GenericBinding.for_request(binding_request).run()
        try:
            text = protocol.encode(protocol.reply(frame.event, data, frame))
        except (TypeError, ValueError):
            logger.error("Reply to %r is not JSON", frame.event, exc_info=True)
            raise ServerError() from None
        return self.respond(text)

    def respond(self, text: str, status: int = 200) -> HttpResponse:
        response = HttpResponse(text, status=status, content_type="application/json")
        if self.allowed:
            response["Allow"] = ", ".join(self.allowed)
        return response

    def handle_exception(self, exc: Exception) -> HttpResponse:
        """Every failure is the websocket's error frame, with its status."""
        set_rollback()
        if isinstance(exc, BadFrame):
            message = protocol.error(exc.event, exc.exc, exc.frame)
        else:
            if isinstance(exc, RequestDataTooBig):
                exc = FrameTooLarge()
            frame = self.frame
            message = protocol.error(frame.event if frame else None, exc, frame)
        status = message["error"]["status"]
        response = self.respond(protocol.encode(message), status)
        if status == 401:
            header = self.get_authenticate_header(self.request)
            if header:
                response["WWW-Authenticate"] = header
        return response

    def get_authenticate_header(self, request) -> str | None:
        """The first ``WWW-Authenticate`` challenge any authenticator offers.

        DRF asks only the first class and answers 403 when it has none (session
        authentication has none); a missing credential is a 401 here, as on the
        websocket, whatever the order of the classes."""
        for authenticator in self.get_authenticators():
            header = authenticator.authenticate_header(request)
            if header:
                return header
        return None

    @property
    def default_response_headers(self) -> dict[str, str]:
        # ``respond`` sets ``Allow`` from the route, which DRF's default (every
        # method the class has a handler for) would overwrite.
        return {}


class EventsView(BindingAPIView):
    """``POST events/``: the body is a websocket frame, the answer its reply."""

    allowed = ("POST",)

    def post(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        raw = request.body
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadFrame(ParseError("Frame is not valid JSON.")) from None
        frame = protocol.parse_frame(text, max_bytes=binding_settings.MAX_FRAME_BYTES)
        if frame.name in CONNECTION_EVENTS:
            self.frame = frame
            raise UnknownEvent(
                f"{frame.event!r} is an event of a websocket connection; it has no "
                "meaning over HTTP."
            )
        return self.run(request, frame)


class RestView(BindingAPIView):
    """REST routes under each stream's path (``shop/Product/``): ``GET`` list or
    search and ``POST`` create on the collection; ``GET``, ``PUT`` (full update),
    ``PATCH`` and ``DELETE`` on ``<pk>/``; ``POST <event>/`` for any other event."""

    def dispatch_route(self, request, route: str) -> HttpResponse:
        stream, rest = resolve(route)
        method = "GET" if request.method == "HEAD" else request.method
        self.allowed = ITEM_METHODS if rest else COLLECTION_METHODS
        if method not in self.allowed:
            raise MethodNotAllowed(request.method)
        if not rest:
            if method == "GET":
                data = list_data(request.query_params)
                action = "search" if "query" in data else "list"
            else:
                action = "create"
        elif method == "POST":
            action = rest[0]  # a custom event (or any event of the stream) by name
        else:
            action = ITEM_ACTIONS.get(method, "delete")
        # Known from here on, so that errors (a bad body too) name the event.
        self.frame = Frame(f"{stream}.{action}", {})
        if method == "POST":
            data = self.body(request)
        elif rest:
            body = self.body(request) if method in ("PUT", "PATCH") else {}
            data = {**body, "id": rest[0]}
        frame = Frame(self.frame.event, data)
        return self.run(request, frame, method="PUT" if method == "PUT" else None)

    def body(self, request) -> dict[str, Any]:
        return load_body(request.body)

    def get(self, request, route: str) -> HttpResponse:
        return self.dispatch_route(request, route)

    post = put = patch = delete = get


def resolve(route: str) -> tuple[str, list[str]]:
    """``"shop/Product/42"`` → ``("shop.Product", ["42"])``: the longest registered
    stream the path starts with, and what follows it (at most one segment)."""
    segments = route.strip("/").split("/")
    if all(segments):
        for end in range(len(segments), 0, -1):
            stream = ".".join(segments[:end])
            if stream in registry:
                rest = segments[end:]
                if len(rest) > 1:
                    raise UnknownEvent(
                        f"No route {route!r} on the stream {stream!r}: use "
                        f"{'/'.join(segments[:end])}/, .../<pk>/ or .../<event>/."
                    )
                return stream, rest
    raise UnknownEvent(f"No binding serves the path {route!r}.")


def list_data(params) -> dict[str, Any]:
    """A list's ``data`` from its query string: ``page``, ``limit``, ``ordering``
    and ``query`` as they are, every other parameter a filter. ``__in`` and
    ``__range`` values are split on commas (and may be repeated)."""
    data: dict[str, Any] = {}
    filter_values: dict[str, Any] = {}
    for key in params:
        values = params.getlist(key)
        if key in LIST_PARAMETERS:
            data[key] = values[-1]
        elif key.endswith(LIST_LOOKUPS):
            filter_values[key] = [part for v in values for part in v.split(",")]
        else:
            filter_values[key] = values[-1]
    if filter_values:
        data["filters"] = filter_values
    return data

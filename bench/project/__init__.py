"""The Django project every server under test runs.

One settings module for all of them; the ``BENCH_STACK`` environment variable picks
the websocket consumer (see :mod:`bench.project.asgi`), ``BENCH_LAYER`` the channel
layer. Each stack runs in a server process of its own, so the signal receivers of
one (channels-binding's, djangochannelsrestframework's observers) never run in
another's measurements.
"""

"""The stress harness's in-process ORM writer (tests/stress.py), loaded only with
``CB_STRESS`` (tests.server_settings).

With the in-memory channel layer, a change reaches only the watchers of the process
that made it, so the harness's ORM writes run inside the server process:
``POST api/stress/orm/`` with ``{"seed": 1, "steps": 2}`` makes ``steps`` random
ORM writes (tests.stress_orm.OrmWriter) and answers their names.
"""

from rest_framework.permissions import IsAuthenticated

from channels_binding.bindings import AsyncBinding, bind
from tests.stress_orm import OrmWriter

_writers: dict[int, OrmWriter] = {}


class StressBinding(AsyncBinding):
    stream = "stress"
    permission_classes = [IsAuthenticated]

    @bind("orm")
    def orm(self, request):
        seed = int(request.data.get("seed", 0))
        writer = _writers.get(seed)
        if writer is None:
            writer = _writers[seed] = OrmWriter(seed)
        steps = int(request.data.get("steps", 1))
        return {"ops": [writer.step() for _ in range(steps)]}

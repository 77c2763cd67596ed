"""The tables and the ``ratios:`` line of ``make bench``, from what
:mod:`bench.run` measured: each figure the median of its repetitions, with the
minimum and maximum, each ratio of figures measured in the same run."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys

RETRIEVE_STACKS = {
    "binding": "channels-binding",
    "hand": "hand-written consumer",
    "dcrf": "DCRF retrieve",
    "echo": "raw Channels echo",
}
FANOUT_STACKS = {
    "binding": "channels-binding",
    "groupsend": "bare group_send",
    "dcrf_observer": "DCRF model_observer",
    "dcrf_instance": "DCRF subscribe_instance",
}
CHANGES_STACKS = {"binding": "channels-binding", "groupsend": "bare group_send"}
IDLE_STACKS = {"binding": "channels-binding", "idle": "bare Channels consumer"}
#: The websocket actions of sections 6 and 7, against the hand-written consumer.
REQUEST_STACKS = {"binding": "channels-binding", "hand": "hand-written consumer"}
#: Section 8: the ``hand`` stack's server serves the DRF view set.
HTTP_STACKS = {"binding": "channels-binding REST", "hand": "DRF ModelViewSet"}


def writer_label(writers: int, rate: float = 0) -> str:
    if not writers:
        return "in daphne"
    pace = f"{rate:,.0f}/s" if rate else "flat out"
    return f"{writers} writer process{'es' * (writers > 1)}, {pace}"


def median(values):
    return statistics.median(values) if values else None


def spread(values, fmt: str) -> str:
    """``median (min-max)``."""
    if not values:
        return "failed"
    mid = fmt.format(median(values))
    if len(values) == 1:
        return mid
    return f"{mid} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [title, ""]
    for row in [header, ["-" * w for w in widths], *rows]:
        lines.append(
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def retrieve_table(results: dict, args) -> str:
    rows = []
    for server in args.servers:
        for stack, label in RETRIEVE_STACKS.items():
            row = [server, label]
            for conns in (1, args.conns):
                reps = results.get((server, conns, stack))
                if not reps:
                    row += ["failed", "", ""]
                    continue
                row.append(spread([r["rate"] for r in reps], "{:.0f}"))
                row.append(f"{median([r['p50_ms'] for r in reps]):.2f}")
                row.append(f"{median([r['p99_ms'] for r in reps]):.2f}")
            rows.append(row)
    n = args.conns
    header = [
        "server",
        "stack",
        "1 conn msgs/s",
        "p50 ms",
        "p99 ms",
        f"{n} conns msgs/s",
        "p50 ms",
        "p99 ms",
    ]
    title = (
        f"1. Retrieve round trip: replies/s, median (min-max) of {args.reps} x "
        f"{args.seconds:g} s; latency: median of the repetitions' p50 and p99"
    )
    return table(title, header, rows)


def fanout_rows(results: dict, args) -> tuple[str, str]:
    rows, query_rows = [], []
    sizes = sorted({1, 100, args.watchers})
    for (layer, server, stack), by_size in results.items():
        label = FANOUT_STACKS[stack]
        if by_size is None:
            rows.append([layer, server, label, "", "failed", "", ""])
            continue
        for size in sizes[1:]:
            reps = by_size[str(size)]
            last = [r["last"] * 1000 for r in reps]
            first = [r["first"] * 1000 for r in reps]
            rows.append(
                [
                    layer,
                    server,
                    label,
                    str(size),
                    spread(last, "{:.0f}"),
                    f"{median(first):.0f}",
                    f"{size / (median(last) / 1000):,.0f}",
                ]
            )
        if layer == "memory":
            counts = [median([r["queries"] for r in by_size[str(s)]]) for s in sizes]
            query_rows.append([server, label] + [f"{c:g}" for c in counts])
    title = (
        "2. One save fanned out: ms from just before save() to the last (and first) "
        "delivery, median (min-max); deliveries/s = watchers / median time to the last"
    )
    header = ["layer", "server", "stack", "watchers", "save->last ms", "first ms"]
    fan = table(title, header + ["deliveries/s"], rows)
    qtitle = (
        "3. Database queries per change, in the server process (in-memory layer; "
        "the saving view's own SELECT and UPDATE not counted)"
    )
    qheader = ["server", "stack"] + [f"{s} watcher{'s' * (s > 1)}" for s in sizes]
    return fan, table(qtitle, qheader, query_rows)


def committed_rate(out: dict) -> float:
    """Changes committed per second by the writer."""
    return out["changes"] / out["seconds"]


def delivered_rate(out: dict) -> float:
    """Frames per second a watcher got (the median watcher), from the first
    commit to the last frame."""
    if not out["last_frame"]:
        return 0.0
    return median(out["frames"]) / (out["last_frame"] - out["started"])


#: The most a change may take to reach every watcher in a sustained run: the
#: time issue 15 gives a resync to repair a loss.
MAX_LAG = 2.0
#: How much worse the last second may be than the middle one: a hub that falls
#: behind lags about twice as much at the end of a run as in its middle.
LAG_GROWTH = 0.5


def sustained(out: dict) -> bool:
    """Every watcher ended with the last state of every row, no change took more
    than ``MAX_LAG`` to reach them all, and the lag did not grow: the changes of
    the last second were not ``LAG_GROWTH`` later than those of the middle one."""
    mid, last = out.get("lag_mid_second"), out.get("lag_last_second")
    return (
        out["complete_after"] is not None
        and not out.get("wrong_final")
        and out["lag_max"] is not None
        and out["lag_max"] <= MAX_LAG
        and mid is not None
        and last is not None
        and last <= mid + LAG_GROWTH
    )


def ms(value) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def changes_table(results: dict, args) -> str:
    rows = []
    for (layer, stack, writers, rate), reps in results.items():
        label = [layer, writer_label(writers, rate), CHANGES_STACKS[stack]]
        if not reps:
            rows.append(label + ["failed"] + [""] * 9)
            continue
        for out in reps:
            rows.append(
                label
                + [
                    f"{committed_rate(out):,.0f}",
                    f"{delivered_rate(out):,.0f}",
                    f"{out['lost_changes']:,}",
                    f"{out.get('wrong_final', 0):,}",
                    ms(out["lag_p50"]),
                    ms(out["lag_p99"]),
                    ms(out["lag_max"]),
                    ms(out.get("lag_mid_second")),
                    ms(out.get("lag_last_second")),
                    "yes" if sustained(out) else "no",
                ]
            )
    title = (
        f"5. Sustained changes: saves of {args.changes_rows} rows (picked at random "
        "by separate writer processes, or in turn by a view of the serving daphne), "
        f"each its own transaction, for {args.changes_seconds:g} s at the rate "
        f"shown (flat out: as fast as they can), to {args.changes_watchers} "
        "watchers of every row on one daphne; lag: "
        "from the commit to a push of that state (or a later one) at the last "
        "watcher; mid: the worst lag of the changes of the middle second; "
        f"sustained: all delivered, none later than {MAX_LAG:g} s, the last "
        f"second's lag within {LAG_GROWTH:g} s of the middle one's"
    )
    header = [
        "layer",
        "writes from",
        "stack",
        "committed/s",
        "frames/s a watcher",
        "changes lost",
        "wrong final",
        "lag p50 ms",
        "p99 ms",
        "max ms",
        "mid ms",
        "last s ms",
        "sustained",
    ]
    return table(title, header, rows)


def changes_ratios(changes: dict, args) -> list[tuple[str, str]]:
    """``changes_per_s``: the most changes per second committed by separate
    writer processes (the most configured, Redis layer, any paced rate or flat
    out) in a run that sustained them (see :func:`sustained`; ``lost`` if a run
    did not end state-complete, ``lagging`` if none kept its lag within a
    second); ``groupsend_100_per_s``: frames per second a socket got from bare
    ``group_send`` (in-memory layer, sent from the serving process)."""
    writers = max(args.changes_writers, default=0)
    runs = [
        reps or []
        for (layer, stack, count, _), reps in changes.items()
        if (layer, stack, count) == ("redis", "binding", writers)
    ]
    ours = [out for reps in runs for out in reps]
    bare = changes.get(("memory", "groupsend", 0, 0)) or []
    if not ours:
        per_s = "n/a"
    elif any(out["complete_after"] is None or out.get("wrong_final") for out in ours):
        per_s = "lost"
    else:
        rates = [
            median([committed_rate(out) for out in reps])
            for reps in runs
            if reps and all(sustained(out) for out in reps)
        ]
        per_s = f"{max(rates):.0f}" if rates else "lagging"
    groupsend = (
        f"{median([delivered_rate(out) for out in bare]):.0f}" if bare else "n/a"
    )
    return [("changes_per_s", per_s), ("groupsend_100_per_s", groupsend)]


def idle_table(results: dict, args, conns: int, number: int = 4) -> str:
    rows = []
    for (server, stack), per_conn in results.items():
        rows.append([server, IDLE_STACKS[stack], spread(per_conn, "{:.1f}")])
    reps = len(next(iter(results.values()), None) or ())
    title = (
        f"{number}. Memory per idle connection: server RSS delta over {conns:,} "
        f"connections / {conns:,}, median (min-max) of {reps} fresh servers"
    )
    return table(title, ["server", "stack", "KB per connection"], rows)


def idle_over(results: dict, server: str) -> str:
    """channels-binding's KB per idle connection minus the bare consumer's."""
    ours = median(results.get((server, "binding")) or [])
    bare = median(results.get((server, "idle")) or [])
    return "n/a" if ours is None or bare is None else f"{ours - bare:.1f}"


def requests_table(title: str, results: dict, stacks: dict, pushes=False) -> str:
    """One row per ``(action, stack)`` of ``results``: replies per second and
    latencies; with ``pushes``, the frames a watcher got per second."""
    rows = []
    for (action, stack), reps in results.items():
        row = [action, stacks[stack]]
        if not reps:
            rows.append(row + ["failed", "", ""] + [""] * pushes)
            continue
        row.append(spread([r["rate"] for r in reps], "{:.0f}"))
        row.append(f"{median([r['p50_ms'] for r in reps]):.2f}")
        row.append(f"{median([r['p99_ms'] for r in reps]):.2f}")
        if pushes:
            row.append(f"{median([r['pushes_per_s'] for r in reps]):.0f}")
        rows.append(row)
    header = ["action", "stack", "replies/s", "p50 ms", "p99 ms"]
    return table(title, header + ["pushes/s a watcher"] * pushes, rows)


def rate_of(results: dict, *key) -> float | None:
    reps = results.get(key)
    return median([r["rate"] for r in reps]) if reps else None


def http_ratio(results: dict) -> str:
    """``http_vs_drf``: the geometric mean of the retrieve and list ratios."""
    ratios = []
    for action in ("retrieve", "list"):
        ours = rate_of(results, action, "binding")
        drf = rate_of(results, action, "hand")
        if not ours or not drf:
            return "n/a"
        ratios.append(ours / drf)
    return f"{math.sqrt(ratios[0] * ratios[1]):.2f}"


def distinct_table(results: dict, args) -> str:
    rows = []
    for users, reps in results.items():
        label = f"{args.distinct:,} users" if users > 1 else "1 user"
        if not reps:
            rows.append([label, "failed", "", ""])
            continue
        last = [r["last"] * 1000 for r in reps]
        rows.append(
            [
                label,
                spread(last, "{:.0f}"),
                f"{median([r['first'] * 1000 for r in reps]):.0f}",
                f"{median([r['queries'] for r in reps]):g}",
            ]
        )
    title = (
        f"9. One save to {args.distinct:,} watchers of product 1 through a per-user "
        "get_queryset(), each socket logged in as its own user (a visibility key "
        "each) or all as one user (one key): ms from just before save() to the "
        "last (and first) delivery, median (min-max); queries per change"
    )
    header = ["watchers", "save->last ms", "first ms", "queries"]
    return table(title, header, rows)


def distinct_ratio(results: dict, args) -> str:
    def last(users):
        reps = results.get(users)
        return median([r["last"] for r in reps]) if reps else None

    return ratio(last(args.distinct), last(1))


def ratios(results: dict, args) -> list[tuple[str, str]]:
    """Every figure of the ``ratios:`` line, as ``(key, value)``."""
    retrieve, fanout = results["retrieve"], results["fanout"]
    server, layer, n = args.servers[0], "memory", args.conns
    fan_server = args.fanout_servers[0]

    def rate(stack, conns):
        return rate_of(retrieve, server, conns, stack)

    def last(stack, size=args.watchers):
        by_size = fanout.get((layer, fan_server, stack))
        return median([r["last"] for r in by_size[str(size)]]) if by_size else None

    def queries(size):
        by_size = fanout.get((layer, fan_server, "binding"))
        return median([r["queries"] for r in by_size[str(size)]]) if by_size else None

    def ours_vs_hand(section, action):
        found = results[section]
        return ratio(rate_of(found, action, "binding"), rate_of(found, action, "hand"))

    return [
        ("retrieve_1", ratio(rate("binding", 1), rate("hand", 1))),
        ("retrieve_50", ratio(rate("binding", n), rate("hand", n))),
        ("vs_dcrf_50", ratio(rate("binding", n), rate("dcrf", n))),
        ("retrieve_vs_echo_50", ratio(rate("binding", n), rate("echo", n))),
        ("fanout_vs_groupsend", ratio(last("binding"), last("groupsend"))),
        ("fanout_vs_dcrf_observer", ratio(last("binding"), last("dcrf_observer"))),
        ("dcrf_instance_vs_fanout", ratio(last("dcrf_instance"), last("binding"))),
        ("queries_1000_vs_1", ratio(queries(args.watchers), queries(1))),
        ("idle_kb_over_channels", idle_over(results["idle"], server)),
        *changes_ratios(results["changes"], args),
        ("list_50", ours_vs_hand("list", "list")),
        ("search_50", ours_vs_hand("list", "search")),
        ("write_50", ours_vs_hand("write", "update")),
        ("http_vs_drf", http_ratio(results["http"])),
        ("fanout_distinct_1000_vs_1", distinct_ratio(results["distinct"], args)),
        ("idle_kb_10k", idle_over(results["idle10k"], server)),
    ]


#: The goal of each figure of the ``ratios:`` line that has one.
GOALS = {
    "retrieve_1": (">=", 1.0),
    "retrieve_50": (">=", 3.0),
    "vs_dcrf_50": (">=", 4.0),
    "retrieve_vs_echo_50": (">=", 0.8),
    "fanout_vs_groupsend": ("<=", 1.5),
    "fanout_vs_dcrf_observer": ("<=", 1.2),
    "dcrf_instance_vs_fanout": (">=", 5.0),
    "queries_1000_vs_1": ("<=", 1.0),
    "idle_kb_over_channels": ("<=", 20.0),
    "changes_per_s": (">=", 1000.0),
    "list_50": (">=", 2.0),
    "search_50": (">=", 2.0),
    "write_50": (">=", 1.0),
    "http_vs_drf": (">=", 1.0),
    "fanout_distinct_1000_vs_1": ("<=", 3.0),
    "idle_kb_10k": ("<=", 20.0),
}


def goals_table(parts: list[tuple[str, str]]) -> str:
    rows = []
    for name, value in parts:
        if name not in GOALS:
            continue
        op, goal = GOALS[name]
        try:
            met = float(value) >= goal if op == ">=" else float(value) <= goal
        except ValueError:  # n/a, or changes_per_s's lost or lagging
            met = None if value == "n/a" else False
        verdict = {True: "met", False: "MISSED", None: "not measured"}[met]
        rows.append([name, f"{op} {goal:g}", value, verdict])
    return table("Goals", ["figure", "goal", "this run", "verdict"], rows)


def ratios_line(parts: list[tuple[str, str]]) -> str:
    return "ratios: " + " ".join(f"{name}={value}" for name, value in parts)


def machine() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import channels
    import django
    import rest_framework

    def version(name: str) -> str:
        # DCRF is the bench extra's alone: ``--only changes`` runs without it.
        try:
            return installed(name)
        except PackageNotFoundError:
            return "(not installed)"

    memory = "?"
    with contextlib.suppress(OSError):
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs, {memory}; load average {load}\n"
        f"Python {sys.version.split()[0]}, Django {django.__version__}, "
        f"channels {channels.__version__}, DRF {rest_framework.__version__}, "
        f"daphne {version('daphne')}, uvicorn {version('uvicorn')}, "
        f"channels-redis {version('channels-redis')}, "
        f"djangochannelsrestframework {version('djangochannelsrestframework')}, "
        f"websockets {version('websockets')}\n"
    )

"""The benchmark's table, its targets (issue #12) and the blocks of bench/README.md it rewrites."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from vapi_calendar.support.metrics import LAG_BUCKETS

README = Path(__file__).resolve().parent / "README.md"

Row = dict[str, Any]


def progress_line(e: Row) -> str:
    who = e["name"] if e["tenancy"] is None else f"{e['name']} {_users(e)}"
    return (
        f"  {google_label(e):>9} c={e['concurrency']:<2} {who:<36} n={e['answered']:<5} "
        f"{e['throughput']:>7.1f}/s p50={e['p50_ms']:>7.1f} p99={e['p99_ms']:>7.1f} ms "
        f"cpu/call={_num(e.get('cpu_ms_per_call'), 2)} ms errors={e['errors']}"
        + (f" [{e['sample_error'][:100]}]" if e["errors"] and e["sample_error"] else "")
    )


def _users(e: Row) -> str:
    if e["tenancy"] == "multi":
        return "200 users"
    if e["tenancy"] == "single":
        return f"1 user, cap {e['cap']}"
    return "-"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def cpu_text(e: Row) -> str:
    """CPU ms per call; with repetitions, the median and [lowest, highest]."""
    text = _num(e.get("cpu_ms_per_call"), 2)
    low_high = e.get("cpu_ms_per_call_range")
    if low_high and text != "-":
        text += f" [{low_high[0]:.2f}, {low_high[1]:.2f}]"
    return text


def lag_range(e: Row) -> tuple[float, float]:
    """The series' largest loop lag as (lowest, highest) it can be, in ms.

    Exact when the server's all-time maximum rose during the series; otherwise the smallest
    histogram bucket holding every sample bounds it: above the bucket below, at most its own.
    """
    high = e["max_loop_lag_ms"]
    if e["max_loop_lag_exact"]:
        return high, high
    below = [b * 1000 for b in LAG_BUCKETS if b * 1000 < high - 1e-9]
    return (below[-1] if below else 0.0), high


def lag_text(e: Row) -> str:
    low, high = lag_range(e)
    if low == high:
        return f"{high:.0f}" if high >= 10 else f"{high:.1f}"
    if math.isinf(high):
        return f">{low:g}"
    return f"{low:g} to {high:g}"


def google_label(e: Row) -> str:
    """The stand-in's added latency: "100 ms", or "100±50 ms" when drawn per request."""
    jitter = e.get("jitter_ms", 0)  # runs recorded before the jittered rows have none
    return f"{e['latency_ms']}±{jitter} ms" if jitter else f"{e['latency_ms']} ms"


def groups(results: dict[str, Any]) -> dict[tuple[int, int, int], list[Row]]:
    """Rows by (latency, jitter, concurrency): each group has its own Google and baselines."""
    out: dict[tuple[int, int, int], list[Row]] = {}
    for e in results["series"]:
        key = (e["latency_ms"], e.get("jitter_ms", 0), e["concurrency"])
        out.setdefault(key, []).append(e)
    return dict(sorted(out.items()))


def find(rows: list[Row], name: str, tenancy: str | None = None, cap: int | None = None) -> Row:
    for e in rows:
        if e["name"] == name and e["tenancy"] == tenancy and (cap is None or e["cap"] == cap):
            return e
    raise KeyError(name)


def google_time(rows: list[Row], e: Row, q: str) -> float:
    """Google's own time for what `e` asks of Google (percentiles of a sum approximated by the
    sum of percentiles for a booking's freeBusy + insert)."""
    freebusy = find(rows, "Google freeBusy")[q]
    if e["kind"] == "booking":
        return freebusy + find(rows, "Google insert")[q]
    return freebusy


def overhead(rows: list[Row], e: Row, q: str) -> float:
    return e[q] - google_time(rows, e, q)


def ratio(rows: list[Row], e: Row) -> str:
    base = find(rows, "baseline (aiohttp)")["throughput"]
    if not base:
        return "-"
    plain = e["throughput"] / base
    if e["kind"] == "booking" and e.get("google_requests_per_call"):
        per_request = plain * e["google_requests_per_call"]
        return f"{plain:.2f} ({per_request:.2f}/req)"
    return f"{plain:.2f}"


def render(results: dict[str, Any], before: dict[str, Any] | None, *, targets: bool = True) -> str:
    meta = results["meta"]
    head = (
        "| Google | c | series | users | n | req/s | vs aiohttp | p50 ms | p99 ms "
        "| overhead p50 / p99 ms | Google req/call | CPU ms/call | booked / refused | errors "
        "| hot-path refreshes | max loop lag ms | RSS MiB |"
    )
    lines = [
        f"Machine: {meta['machine']}; Python {meta['python']}; commit {meta['commit']}; "
        f"{meta['date']}; load: {meta['generator']}"
        + (f" ({meta['wrk']})" if meta.get("wrk") else "")
        + f"; run took {meta['seconds']} s."
        + (" **Quick run (a tenth of the requests).**" if meta.get("quick") else "")
        + (
            f" Every series ran {meta['repeat']} times in a row: medians per column (n and "
            "the counts are totals; CPU ms/call also shows [lowest, highest]; max loop lag "
            "is the worst)."
            if meta.get("repeat", 1) > 1
            else ""
        ),
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for (_, _, concurrency), rows in groups(results).items():
        for e in rows:
            google = e["target"] == "google"
            server = e["target"] == "server"
            n = f"{e['answered']}" + ("*" if e["time_capped"] else "")
            over = (
                "-"
                if google
                else f"{overhead(rows, e, 'p50_ms'):.1f} / {overhead(rows, e, 'p99_ms'):.1f}"
            )
            lag = lag_text(e) if "max_loop_lag_ms" in e else "-"
            booked = f"{e['booked']} / {e['refused']}" if e["kind"] == "booking" and server else "-"
            lines.append(
                f"| {google_label(e)} | {concurrency} | {e['name']} | {_users(e)} | {n} "
                f"| {e['throughput']:.0f} | {'-' if google else ratio(rows, e)} "
                f"| {e['p50_ms']:.1f} | {e['p99_ms']:.1f} | {over} "
                f"| {_num(e.get('google_requests_per_call'), 2)} "
                f"| {cpu_text(e)} | {booked} | {e['errors']} "
                f"| {e.get('hot_path_refreshes', '-')} | {lag} | {_num(e['rss_mib'])} |"
            )
    generator = sorted(
        e["generator_cpu_ms_per_call"]
        for e in results["series"]
        if e.get("generator_cpu_ms_per_call") is not None
    )
    other = [e["other_load_cores"] for e in results["series"] if "other_load_cores" in e]
    lines += [
        "",
        f"Other processes on the machine (not the bench's) used {sum(other) / len(other):.2f} "
        f"cores on average during the series, at most {max(other):.2f} in one."
        if other
        else "",
        f"Load generator ({meta['generator']}) CPU per request: median "
        f"{generator[len(generator) // 2]:.2f} ms, max {generator[-1]:.2f} ms."
        if generator
        else "",
        f"`*` stopped by the {meta['cap_seconds']:g} s cap before its request count. "
        f"CPU ms/call of the Google rows is the stand-in's own. Idle server CPU: "
        f"{meta['idle_server_cpu_ms_per_s']} ms/s (lag monitor, background refresher; included "
        f"in CPU ms/call). Whole run: {meta['background_refreshes']:.0f} background refreshes, "
        f"{meta['hot_path_refreshes']:.0f} on the hot path; max event-loop lag "
        f"{meta['max_loop_lag_ms']} ms; peak server RSS {meta['peak_rss_mib']} MiB "
        "(first server; the cap-64 rows run on a restarted one).",
    ]
    failures = [e for e in results["series"] if e.get("error_sentences")]
    if failures:
        lines += ["", "Tool errors (what the caller would hear):"]
        for e in failures:
            said = "; ".join(f"{n}: “{text}”" for text, n in e["error_sentences"].items())
            lines.append(
                f"- {google_label(e)}, c={e['concurrency']}, {e['name']}, {_users(e)}: {said}"
            )
    if targets:
        lines += ["", *render_targets(results, before)]
    return "\n".join(lines)


def render_targets(results: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """Issue #12's targets, read off this run (and the recorded 'before' run for CPU)."""
    g = groups(results)
    lines = ["| target (issue #12) | this run | met? |", "|---|---|---|"]

    def row(target: str, value: str, met: bool | None) -> None:
        lines.append(f"| {target} | {value} | {'-' if met is None else ('yes' if met else 'no')} |")

    try:
        rows = g[(100, 0, 50)]
        avail = find(rows, "checkAvailability", "multi")
        book = find(rows, "scheduleAppointment", "multi")
        base = find(rows, "baseline (aiohttp)")
        r = avail["throughput"] / base["throughput"]
        row(
            "availability throughput ≥ 0.5x aiohttp (200 users, c=50, 100 ms)",
            f"{r:.2f}x",
            r >= 0.5,
        )
        per_req = book["throughput"] * book["google_requests_per_call"] / base["throughput"]
        row(
            "booking throughput per Google request ≥ 0.4x aiohttp (same)",
            f"{per_req:.2f}x",
            per_req >= 0.4,
        )
        p50s = []
        for latency in (0, 100):
            c1 = g[(latency, 0, 1)]
            a = overhead(c1, find(c1, "checkAvailability", "multi"), "p50_ms")
            b = overhead(c1, find(c1, "scheduleAppointment", "multi"), "p50_ms")
            p50s.append((latency, a, b))
        row(
            "p50 overhead at c=1 ≤ 3 ms availability / ≤ 5 ms booking (200 users)",
            "; ".join(f"{lat} ms: {a:.1f} / {b:.1f}" for lat, a, b in p50s),
            all(a <= 3 and b <= 5 for _, a, b in p50s),
        )
        ours, theirs = overhead(rows, avail, "p99_ms"), overhead(rows, base, "p99_ms")
        # Each p99 comes from its own series: when Google's own p99 came out above the
        # baseline's, this run cannot tell the baseline's overhead, nor the target.
        row(
            "p99 overhead ≤ 2x the baseline's (availability, c=50, 100 ms)",
            f"{ours:.1f} ms vs 2 x {theirs:.1f} ms",
            ours <= 2 * theirs if theirs > 0 else None,
        )
        worst = max((avail, book), key=lambda e: lag_range(e)[1])
        low, high = lag_range(worst)
        # The bare handler's own lag under the same bursts of callers, where it was measured.
        handler = f" (aiohttp handler: {lag_text(base)} ms)" if "max_loop_lag_ms" in base else ""
        row(
            "max event-loop lag ≤ 20 ms (c=50, 100 ms; availability and booking)",
            f"{lag_text(worst)} ms{handler}",
            True if high <= 20 else (False if low >= 20 else None),
        )
        now = avail["cpu_ms_per_call"]
        if before is not None:
            # The machine's speed drifts by tens of per cent within hours, so a call's CPU is
            # compared in units of the aiohttp handler's CPU per call measured in the same run.
            then_rows = groups(before)[(100, 0, 50)]
            then = find(then_rows, "checkAvailability", "multi")["cpu_ms_per_call"]
            then_base = find(then_rows, "baseline (aiohttp)")["cpu_ms_per_call"]
            now_units, then_units = now / base["cpu_ms_per_call"], then / then_base
            row(
                "CPU per availability call ≤ half of before, in aiohttp-handler calls of the "
                "same run (200 users, c=50, 100 ms)",
                f"{now:.2f} ms = {now_units:.1f} now, {then:.2f} ms = {then_units:.1f} before "
                f"({before['meta']['commit']}): {now_units / then_units:.0%}",
                now_units <= then_units / 2,
            )
        else:
            row("CPU ms per availability call ≤ half of before", f"{now:.2f}", None)
    except KeyError as missing:
        lines.append(f"| (series {missing} missing from this run) | - | - |")
    for (latency, jitter, concurrency), rows in g.items():
        if (latency, concurrency) == (100, 50) and jitter:
            lines += ["", jittered_line(rows)]
    return lines


def jittered_line(rows: list[Row]) -> str:
    """The p99 and loop-lag rows again, with Google's answers spread (not issue #12's terms)."""
    try:
        avail = find(rows, "checkAvailability", "multi")
        base = find(rows, "baseline (aiohttp)")
    except KeyError:
        return ""
    ours, theirs = overhead(rows, avail, "p99_ms"), overhead(rows, base, "p99_ms")
    return (
        f"With Google at {google_label(avail)} (the same calls, each answer's delay drawn on its "
        f"own; not the issue's conditions): availability p99 overhead {ours:.1f} ms vs the "
        f"aiohttp handler's {theirs:.1f} ms, max event-loop lag {lag_text(avail)} ms (handler: "
        f"{lag_text(base)} ms), {avail['throughput'] / base['throughput']:.2f}x its throughput."
    )


def write_readme(block: str, text: str) -> None:
    """Replace the text between `<!-- {block}:start -->` and `<!-- {block}:end -->`."""
    content = README.read_text()
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    if start not in content or end not in content:
        raise RuntimeError(f"bench/README.md has no {start} … {end} markers")
    replacement = f"{start}\n{text}\n{end}"
    content = re.sub(
        re.escape(start) + ".*?" + re.escape(end), lambda _m: replacement, content, flags=re.S
    )
    README.write_text(content)

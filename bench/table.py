"""The README's benchmark table, from bench/results.json (so the table is reproducible).

    .venv/bin/python bench/table.py [bench/results.json]            # print the markdown
    .venv/bin/python bench/table.py --readme README.md               # rewrite its section

The section sits between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``. Each row is one
figure: its value, the same-run baseline, the ratio, the target and whether it was met.
Targets come from each benchmark's own JSON where it states them (deploy, ingest, pages,
load); ``runtime_overhead``'s is 1.3x a bare query().
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
YES, NO, NONE = "yes", "**no**", "—"


def _ms(value) -> str:
    return NONE if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _x(value) -> str:
    return NONE if value is None else f"{value:.2f}×"


def _met(flag) -> str:
    return NONE if flag is None else YES if flag else NO


def deploy(b: dict) -> list[tuple]:
    m, base, t = b["metrics"], b["baseline"]["bare_bwrap_runtime_healthy"], b["targets"]
    p50 = m["deploy_to_ready"]["p50_ms"]
    return [
        (
            "deploy → ready, p50",
            _ms(p50),
            f"{_ms(base['p50_ms'])} bare bwrap runtime",
            _x(b["ratio"]),
            f"≤ {t['deploy_p50_ms_max']} ms, ratio ≤ {t['ratio_max']}",
            _met(p50 <= t["deploy_p50_ms_max"] and b["ratio"] <= t["ratio_max"]),
        ),
        (
            "execute → 202, p50",
            _ms(m["execute_202"]["p50_ms"]),
            NONE,
            NONE,
            f"≤ {t['execute_202_ms']} ms",
            _met(m["execute_202"]["p50_ms"] <= t["execute_202_ms"]),
        ),
        (
            f"idle sandbox PSS, p50 of {m['idle_memory']['sandboxes']}",
            f"{m['idle_memory']['per_sandbox_mib_p50']} MiB",
            NONE,
            NONE,
            NONE,
            NONE,
        ),
    ]


def runtime_overhead(b: dict) -> list[tuple]:
    m, base = b["metrics"], b["baseline"]
    ratio_max = (b.get("targets") or {}).get("ratio_max", 1.3)
    return [
        (
            "execute → result line",
            _ms(m["execute_to_result_s"] * 1000),
            f"{_ms(base['query_to_result_s'] * 1000)} bare query()",
            _x(b["ratio"]),
            f"ratio ≤ {ratio_max}",
            _met(b["ratio"] <= ratio_max),
        ),
        (
            "execute → first line",
            _ms(m["execute_to_first_line_s"] * 1000),
            f"{_ms(base['query_to_first_message_s'] * 1000)} bare query()",
            _x(b.get("first_line_ratio")),
            NONE,
            NONE,
        ),
    ]


def ingest(b: dict) -> list[tuple]:
    m, t = b["metrics"], b["targets"]
    return [
        (
            "stored lines/s",
            f"{m['stored_lines_per_s']:,}",
            f"{b['baseline']['copy_rows_per_s']:,} COPY rows/s",
            _x(b["ratio"]),
            "ratio ≥ 0.3",
            _met(t.get("ratio_at_least_0.3")),
        ),
        (
            "append → WebSocket p99 at 1,000 lines/s",
            _ms(m["latency_ms_p99_at_1000_lps"]),
            NONE,
            NONE,
            "< 100 ms",
            _met(t.get("p99_under_100ms_at_1000_lps")),
        ),
        (
            f"last page of a {b['config']['big_session_lines']:,}-line session, p50",
            _ms(m["last_page_ms_p50"]),
            NONE,
            NONE,
            "< 50 ms",
            _met(t.get("last_page_under_50ms")),
        ),
    ]


def pages(b: dict) -> list[tuple]:
    m, base, target = b["metrics"], b["baseline"]["healthz"], b["target_ms"]
    rows = []
    for name in ("agents_list", "agent_detail_1000_sessions", "terminal_100k_lines"):
        page = m[name]
        rows.append(
            (
                f"page {name}, p95",
                _ms(page["p95_ms"]),
                f"{_ms(base['p95_ms'])} /healthz",
                _x(page["p50_ms"] / base["p50_ms"] if base["p50_ms"] else None),
                f"< {target} ms",
                _met(page["p95_ms"] < target),
            )
        )
    return rows


def load(b: dict) -> list[tuple]:
    m, s, t, met = b["metrics"], b.get("baseline") or {}, b["targets"], b["met"]
    n, solo_n = m["sessions"], s.get("sessions", 0)

    def ratio(a, c):
        return _x(a / c) if a is not None and c else NONE

    lat, solo_lat = m["line_latency"], s.get("line_latency", {})
    wall, solo_wall = m["session_wall"], s.get("session_wall", {})
    cpu, solo_cpu = m["sandbox_cpu_s"], s.get("sandbox_cpu_s", {})
    pss, solo_pss = m["sandbox_pss_peak_mib"], s.get("sandbox_pss_peak_mib", {})
    studio_cpu = sum(g["cpu_s"] for g in m["studio"].values())
    studio_rss = sum(g["rss_peak_mib"] for g in m["studio"].values())
    solo_studio_cpu = sum(g["cpu_s"] for g in s.get("studio", {}).values())
    return [
        (
            f"{n} concurrent runs: complete logs",
            f"{m['complete_sessions']}/{n}",
            f"{s.get('complete_sessions', 0)}/{solo_n} solo",
            NONE,
            "all",
            _met(met["all_logs_complete"]),
        ),
        (
            "line latency (sandbox ts → watcher), p50",
            _ms(lat["p50_ms"]),
            f"{_ms(solo_lat.get('p50_ms'))} solo",
            ratio(lat["p50_ms"], solo_lat.get("p50_ms")),
            NONE,
            NONE,
        ),
        (
            "line latency, p99",
            _ms(lat["p99_ms"]),
            f"{_ms(solo_lat.get('p99_ms'))} solo",
            ratio(lat["p99_ms"], solo_lat.get("p99_ms")),
            f"≤ {t['latency_p99_ms_max']} ms",
            _met(met["latency_p99_ms_max"]),
        ),
        (
            "session wall time (execute → last line), p50",
            _ms(wall["p50_ms"]),
            f"{_ms(solo_wall.get('p50_ms'))} solo",
            _x(b["ratio"]),
            f"ratio ≤ {t['ratio_over_cpu_floor_max']} × CPU floor ({_x(m['cpu_floor_ratio'])})",
            _met(met["ratio_over_cpu_floor_max"]),
        ),
        (
            "session wall time, p99",
            _ms(wall["p99_ms"]),
            f"{_ms(solo_wall.get('p99_ms'))} solo",
            ratio(wall["p99_ms"], solo_wall.get("p99_ms")),
            NONE,
            NONE,
        ),
        (
            "CPU per sandbox per run, p50",
            f"{cpu['p50_s']} s",
            f"{solo_cpu.get('p50_s')} s solo",
            ratio(cpu["p50_s"], solo_cpu.get("p50_s")),
            NONE,
            NONE,
        ),
        (
            "peak PSS per sandbox, p50",
            f"{pss['p50_mib']} MiB",
            f"{solo_pss.get('p50_mib')} MiB solo",
            ratio(pss["p50_mib"], solo_pss.get("p50_mib")),
            NONE,
            NONE,
        ),
        (
            "WebSocket connects that failed (watcher reconnected)",
            str(m.get("socket_failures", 0)),
            f"{s.get('socket_failures', 0)} solo",
            NONE,
            NONE,
            NONE,
        ),
        (
            f"studio CPU ({'+'.join(m['studio'])}); peak RSS",
            f"{studio_cpu:.1f} s ({m['studio_cpu_ms_per_line']} ms/line); {studio_rss:.0f} MiB",
            f"{solo_studio_cpu:.1f} s solo",
            NONE,
            NONE,
            NONE,
        ),
    ]


def gateway(b: dict) -> list[tuple]:
    m, direct = b["metrics"], b["baseline"]["direct"]["answer"]
    answer = m["gateway"]["answer"]
    target = b["targets"]["overhead_p50_ms_max"]
    return [
        (
            f"model call through the gateway ({b.get('mode', 'embedded')}), p50",
            _ms(answer["p50_ms"]),
            f"{_ms(direct['p50_ms'])} direct to the scripted model",
            _x(b["ratio"]),
            f"overhead < {target} ms",
            _met(b["meets_target"]),
        ),
        (
            "overhead p50 / p99",
            f"{m['overhead_p50_ms']} / {m['overhead_p99_ms']} ms",
            NONE,
            NONE,
            NONE,
            NONE,
        ),
    ]


ROWS = {
    "deploy": deploy,
    "gateway": gateway,
    "gateway_production": gateway,
    "runtime_overhead": runtime_overhead,
    "ingest": ingest,
    "pages": pages,
    "load": load,
    "load_production": load,
}


def table(results: dict) -> str:
    mach = results["machine"]
    out = [
        f"Measured {mach['date']} at commit `{mach.get('commit')}` on {mach['cpu_model']}, "
        f"{mach['cores']} cores, {mach['memory_gib']} GiB, Python {mach['python']}; load "
        f"average {mach['load_average'][0]} at the start, {mach.get('load_average_end', ['?'])[0]}"
        " at the end (the concurrent-run benchmarks saturate the cores)."
        + (" Quick mode." if results.get("quick") else ""),
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, bench in results["benchmarks"].items():
        if "error" in bench and "metrics" not in bench:
            out.append(f"| {name} | failed | {bench['error']} | {NONE} | {NONE} | {NONE} | {NO} |")
            continue
        try:
            rows = ROWS[name](bench)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            rows = [("unreadable result", repr(exc), NONE, NONE, NONE, NO)]
        for i, row in enumerate(rows):
            label = f"{name} (load avg {bench['run']['load_average_before'][0]})" if not i else ""
            out.append("| " + " | ".join([label, *map(str, row)]) + " |")
        if "error" in bench:
            out.append(f"| | error | {bench['error']} | | | | {NO} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--readme", help="rewrite this file's section between the markers")
    args = parser.parse_args()
    text = table(json.loads(Path(args.results).read_text()))
    if not args.readme:
        print(text, end="")
        return
    path = Path(args.readme)
    readme = path.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}{END}", readme))


if __name__ == "__main__":
    main()

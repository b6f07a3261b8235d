"""`make bench` = `python -m bench`: start the system, drive load through the gateway from another process, print
the tables, write them to bench/RESULTS.md and the raw figures to var/bench/.

    python -m bench                              embedded default (SQLite files, a NATS of its own)
    python -m bench --postgres                   fresh PostgreSQL databases on 127.0.0.1:5432 (dropped afterwards)
    python -m bench --sizes 10000,100000,1000000 growth up to a million cases (the bulk load takes minutes)
    python -m bench --only growth                only some parts: baseline, system, growth, custody, documents,
                                                 webhooks, reports, scaling
    python -m bench --only custody               create and read case, keys in OpenBao against keys in files
    python -m bench --only documents             upload and download a 5 MB photo and scan, against a file copy
    python -m bench --only webhooks              webhook delivery at 50 referrals/s against the event's, and a
                                                 receiver that hangs against another partner's deliveries
    python -m bench --only reports               the programme report over a year of a million cases
    python -m bench --only scaling               read case with one replica of every service against two
                                                 (`rehab up --cluster` on PostgreSQL, with or without --postgres):
                                                 not in the default run: it adds ~3–4 minutes (two rounds)

A run without --only runs every part but `scaling` (DEFAULT_PARTS); `--only` names any of PARTS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import custody, documents, report, reports, scaling, scenarios, webhooks
from bench.harness import REPO_ROOT
from bench.system import Backing, System

PARTS = ("baseline", "system", "growth", "custody", "documents", "webhooks", "reports", "scaling")
# Two clusters started one after the other and measured: minutes more than a default run should take.
DEFAULT_PARTS = tuple(part for part in PARTS if part != "scaling")
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS_MD = Path(__file__).parent / "RESULTS.md"
RAW_DIR = REPO_ROOT / "var" / "bench"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="run on fresh PostgreSQL databases")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL,
                        help="a URL that may CREATE and DROP DATABASE (default: %(default)s)")
    parser.add_argument("--nats-url", help="an external NATS (its INTAKE/REFERRALS/FUNDS streams are deleted "
                                           "first); default: the system starts its own")
    parser.add_argument("--sizes", default="10000,100000", help="case counts for growth (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of each direct/gateway pair and of the custody part's "
                             "measurements, the best counts (default: %(default)s)")
    others = ", ".join(part for part in PARTS if part not in DEFAULT_PARTS)
    parser.add_argument("--only", default=",".join(DEFAULT_PARTS),
                        help=f"parts to run (default: %(default)s; only when named: {others})")
    parser.add_argument("--no-results-md", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument("--raw-dir", type=Path, default=RAW_DIR, help="where the raw JSON goes (default: var/bench)")
    parser.add_argument("--keep", action="store_true", help="keep the state folders (databases, logs) afterwards")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 40 or not 0 <= args.warmup <= 10 or args.rounds < 1:
        parser.error("--duration takes 0–40 s, --warmup 0–10 s, --rounds at least 1 (every run stays bounded)")
    args.parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    try:
        args.size_list = tuple(int(size) for size in args.sizes.split(",") if size.strip())
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    settings = scenarios.Settings(duration=args.duration, warmup=args.warmup, rounds=args.rounds, sizes=args.size_list)

    def backing() -> Backing:
        made = Backing(postgres_admin_url=args.postgres_url if args.postgres else None, nats_url=args.nats_url)
        made.reset_streams()
        return made

    key = run_key(args)
    run = scenarios.Run(settings)
    started = datetime.now(UTC)
    run.results["meta"] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"), "key": key, "backing": backing_name(args),
        "machine": report.machine(), "load_before": report.load_average(), "parts": args.parts,
        "settings": {"duration": settings.duration, "warmup": settings.warmup, "rounds": settings.rounds,
                     "sizes": list(settings.sizes), "propagation_rates": list(settings.propagation_rates)},
    }
    workdir = Path(tempfile.mkdtemp(prefix="rehab-bench-"))
    try:
        if "baseline" in args.parts:
            say("baseline: bare FastAPI")
            scenarios.baseline(run)
        if "system" in args.parts:
            say("system: starting `rehab up`")
            system = System(workdir / "system", backing())
            try:
                system.start()
                say("system: measuring (operations, gateway overhead, event propagation, memory)")
                scenarios.system_benchmarks(run, system, scenarios.set_up(system))
            finally:
                system.stop()
                system.backing.drop_databases()
        if "growth" in args.parts:
            say(f"growth: {', '.join(f'{size:,}' for size in settings.sizes)} cases")
            scenarios.growth(run, workdir, backing, progress=say)
        if "custody" in args.parts:
            say("custody: file against openbao key custody (create case, read case, cold read)")
            custody.custody(run, workdir, backing, progress=say)
        if "documents" in args.parts:
            say("documents: upload and download through the gateway, against a plain file copy")
            documents.documents(run, workdir, backing, progress=say)
        if "webhooks" in args.parts:
            say("webhooks: delivery at 50 referrals/s against the event's; a hanging receiver against another's")
            webhooks.webhooks(run, workdir, backing, progress=say)
        if "reports" in args.parts:
            say("reports: the programme report over a year of a million cases, against a bare JSON answer")
            reports.reports(run, workdir, backing, progress=say)
        if "scaling" in args.parts:
            say("scaling: read case with one replica of every service against two (`rehab up --cluster`, PostgreSQL)")
            scaling.scaling(run, workdir, lambda: Backing(postgres_admin_url=args.postgres_url), progress=say)
    finally:
        if args.keep:
            say(f"state folders kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    run.results["meta"]["load_after"] = report.load_average()
    run.results["meta"]["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    run.results["targets"] = report.targets(run.results)

    tables = report.render(run.results)
    print(tables)
    args.raw_dir.mkdir(parents=True, exist_ok=True)
    raw = args.raw_dir / f"{started:%Y%m%d-%H%M%S}-{key.replace(' ', '_').replace(',', '-')}.json"
    raw.write_text(json.dumps(run.results, indent=2, default=str))
    say(f"raw figures: {raw}")
    if not args.no_results_md:
        report.write_section(RESULTS_MD, key, f"{backing_name(args)} — {run.results['meta']['started']}"
                             + (f" ({', '.join(args.parts)})" if args.parts != list(DEFAULT_PARTS) else ""), tables)
        say(f"tables written to {RESULTS_MD}")
    return 0


def run_key(args: argparse.Namespace) -> str:
    """Which RESULTS.md section a run replaces: one per backing, and one per partial run."""
    if args.parts == ["scaling"]:
        return "scaling"  # on PostgreSQL and a NATS cluster whatever the backing: one section for either
    key = "postgres" if args.postgres else "embedded"
    if args.parts != list(DEFAULT_PARTS):
        key += " " + "+".join(args.parts)
    if "growth" in args.parts and args.sizes != "10000,100000":
        key += " sizes " + args.sizes
    return key


def backing_name(args: argparse.Namespace) -> str:
    if args.parts == ["scaling"]:
        return "PostgreSQL, a NATS cluster of three (`rehab up --cluster`)"
    database = "PostgreSQL" if args.postgres else "SQLite (embedded default)"
    named = f"{database}, {'external NATS' if args.nats_url else 'embedded NATS'}"
    return named + ("; scaling on PostgreSQL and a NATS cluster of three" if "scaling" in args.parts else "")


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

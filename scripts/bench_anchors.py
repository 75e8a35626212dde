#!/usr/bin/env python3
"""Helpers of scripts/bench-anchors (run by it with the anchor virtualenv's python).

Subcommands:

  run [--stdout F] [--stderr F] -- CMD ARGS..
      Runs CMD, waits for it, prints "WALL_SECONDS PEAK_RSS_KIB EXIT_CODE" and exits with
      CMD's exit code. Wall time is time.perf_counter() around spawn and wait; the peak RSS
      is the ru_maxrss that wait4() returns for that one child (Linux: KiB). stdin is
      /dev/null; stdout/stderr go to the given files (default: inherited).
  make-csv PARQUET OUT.csv
      The rows tgpulse's telegram-animals import stores, as CSV for psql \\copy: columns
      channel_id, observed_at (UTC), members, post_count; one row per (channel_id,
      observed_at) keeping the highest subscriber count, as the import does. Prints the rows.
  duckdb-copy --dsn DSN --relation R --out F.parquet
      The DuckDB anchor of the Parquet export: loads the postgres_scanner extension from its
      PyPI wheel, ATTACHes the database and COPYs the relation to zstd Parquet. Prints
      "WALL_SECONDS PEAK_RSS_KIB": the time from connect to the end of the COPY (the part a
      duckdb CLI would also do; Python's start and `import duckdb` are left out).
  rows F.parquet
      Prints the row count in the file's footer.
  report --results TSV --facts TSV --out F.md [--criterion-dir D --since EPOCH] [--bot F]
      Prints the Markdown report (and writes it to --out): the table of tgpulse against its
      anchors, the details of every run, the criterion medians and the bot benchmark's table.
"""

import argparse
import glob
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time


# ---------------------------------------------------------------------------------------
# run: wall time and peak RSS of one child process


def cmd_run(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("run: no command given")
    out = open(a.stdout, "wb") if a.stdout else None
    err = open(a.stderr, "wb") if a.stderr else None
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    except OSError as e:
        sys.exit(f"run: cannot start {cmd[0]}: {e}")
    # wait4 gives the rusage of exactly this child (RUSAGE_CHILDREN would be the maximum
    # over every child waited for so far, which is the same here but less obviously so).
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    rc = p.returncode if p.returncode >= 0 else 128 - p.returncode
    print(f"{wall:.6f} {usage.ru_maxrss} {rc}")
    sys.exit(rc)


# ---------------------------------------------------------------------------------------
# make-csv: the anchor's input, the same rows the import stores


def cmd_make_csv(a):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = a.parquet.replace("'", "''")
    dst = a.out.replace("'", "''")
    # observed_at is text with an offset ("2021-03-17 01:17:20.354178+00:00"); two spellings
    # of one instant are one key, so the key is the parsed instant. The higher count wins
    # (tgpulse keeps the higher reading of a key); post_count goes with that reading.
    # Ids in the Bot API's -100… form would be normalised by tgpulse; the file has none
    # (checked below), so channel_id passes through.
    neg = con.execute(
        f"SELECT count(*) FROM read_parquet('{src}') WHERE channel_id <= 0"
    ).fetchone()[0]
    if neg:
        sys.exit(f"make-csv: {neg} rows with a non-positive channel_id; the anchor CSV "
                 "would not match what tgpulse stores")
    con.execute(f"""
        COPY (
            SELECT channel_id,
                   CAST(observed_at AS TIMESTAMPTZ)                          AS observed_at,
                   max(subscriber_count)                                     AS members,
                   CAST(arg_max(post_count, subscriber_count) AS BIGINT)     AS post_count
            FROM read_parquet('{src}')
            WHERE channel_id IS NOT NULL AND observed_at IS NOT NULL
              AND subscriber_count IS NOT NULL
            GROUP BY 1, 2
            ORDER BY 1, 2
        ) TO '{dst}' (FORMAT csv, HEADER)
    """)
    n = con.execute(f"SELECT count(*) FROM read_csv('{dst}')").fetchone()[0]
    print(n)


# ---------------------------------------------------------------------------------------
# duckdb-copy: DuckDB + postgres_scanner, PostgreSQL -> Parquet


def postgres_scanner_path():
    """The extension file inside the duckdb-extension-postgres-scanner wheel."""
    import duckdb_extension_postgres_scanner as m

    found = glob.glob(os.path.join(os.path.dirname(m.__file__), "extensions", "*",
                                   "postgres_scanner.duckdb_extension"))
    if not found:
        sys.exit("duckdb-copy: postgres_scanner.duckdb_extension not found in the wheel")
    return found[0]


def cmd_duckdb_copy(a):
    import duckdb

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", a.relation):
        sys.exit(f"duckdb-copy: not a relation name: {a.relation!r}")
    ext = postgres_scanner_path().replace("'", "''")
    dsn = a.dsn.replace("'", "''")
    out = a.out.replace("'", "''")
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY (SELECT * FROM pg.{a.relation}) TO '{out}' "
                "(FORMAT parquet, COMPRESSION zstd)")
    con.close()
    wall = time.perf_counter() - t0
    print(f"{wall:.6f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


def cmd_rows(a):
    import pyarrow.parquet as pq

    print(pq.ParquetFile(a.file).metadata.num_rows)


# ---------------------------------------------------------------------------------------
# report


# (key, label, tgpulse results key, anchor results key, anchor label, goal)
ROWS = [
    ("import", "import `subscriber_observations.parquet`",
     "tgpulse_import", "psql_copy", "`psql \\copy` CSV", 0.5),
    ("import_posts", "import `posts_meta.parquet`",
     "tgpulse_import_posts", None, None, None),
    ("parquet", "export `post_samples` → Parquet (zstd)",
     "tgpulse_parquet", "duckdb_parquet", "DuckDB `postgres_scanner` `COPY … TO`", 1.2),
    ("csv", "export `post_samples` → CSV on stdout",
     "tgpulse_csv", "psql_csv", "`psql \\copy … to stdout`", 0.9),
    ("stats", "`stats` one channel, 365 days, as a process",
     "tgpulse_stats", "psql_stats", "`psql -f` daily series", 1.0),
]


def read_results(path):
    """results.tsv: KEY WALL_S PEAK_RSS_KIB, one line per run."""
    res = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    rss = int(parts[2]) if len(parts) > 2 else 0
                    res.setdefault(parts[0], []).append((float(parts[1]), rss))
    return res


def read_facts(path):
    """facts.tsv: KEY<TAB>VALUE."""
    facts = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                if k:
                    facts[k] = v
    return facts


def secs(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def size(nbytes):
    return f"{int(nbytes) / 1e6:.1f} MB"


def criterion_medians(root, since):
    """(name, median ns) of every criterion benchmark written at or after `since`."""
    out = []
    for est in sorted(glob.glob(os.path.join(root, "**", "new", "estimates.json"),
                                recursive=True)):
        if os.path.getmtime(est) < since:
            continue  # an older run's result, not this one's
        name = os.path.relpath(os.path.dirname(os.path.dirname(est)), root)
        if name.split(os.sep)[-1] == "report":
            continue
        with open(est) as f:
            median = json.load(f)["median"]["point_estimate"]
        out.append((name.replace(os.sep, "/"), median))
    return out


def cmd_report(a):
    res = read_results(a.results)
    facts = read_facts(a.facts)
    lines = []
    w = lines.append

    w("## tgpulse against its anchors")
    w("")
    for k in ("date", "machine", "postgres", "tgpulse", "commit"):
        if k in facts:
            w(f"- {k}: {facts[k]}")
    w(f"- medians of {facts.get('runs', '?')} runs "
      f"({facts.get('stats_runs', '?')} for `stats`); ratio = anchor time ÷ tgpulse time, "
      "higher is better for tgpulse")
    w("")
    w("| path | tgpulse | anchor | ratio | goal |")
    w("|---|---|---|---|---|")
    details = []
    for key, label, tk, ak, alabel, goal in ROWS:
        t = res.get(tk)
        if not t:
            continue
        tmed = statistics.median(x for x, _ in t)
        tpeak = max(r for _, r in t)
        tcell = f"{secs(tmed)}, peak RSS {mib(tpeak)}"
        if key == "parquet" and "tgpulse_parquet_bytes" in facts:
            tcell += f", {size(facts['tgpulse_parquet_bytes'])} file"
        acell, ratio, gcell = "—", "—", "—"
        anc = res.get(ak) if ak else None
        if anc:
            amed = statistics.median(x for x, _ in anc)
            acell = f"{secs(amed)} ({alabel})"
            if key == "parquet" and "duckdb_parquet_bytes" in facts:
                acell = (f"{secs(amed)}, {size(facts['duckdb_parquet_bytes'])} file "
                         f"({alabel})")
            r = amed / tmed
            ratio = f"{r:.2f}"
            if goal is not None:
                gcell = f"≥ {goal:g} {'✓' if r >= goal else '✗ (missed)'}"
        w(f"| {label} | {tcell} | {acell} | {ratio} | {gcell} |")
        runs = ", ".join(secs(x) for x, _ in t)
        details.append(f"- {label}: tgpulse runs {runs}; peak RSS per run "
                       + ", ".join(mib(r) for _, r in t))
        if anc:
            details.append(f"  - anchor runs {', '.join(secs(x) for x, _ in anc)}; "
                           f"anchor peak RSS {mib(max(r for _, r in anc))}")
    w("")
    extra = [f"- {k[5:].replace('_', ' ')}: {v}" for k, v in facts.items()
             if k.startswith("note_")]
    if details or extra:
        w("Details:")
        w("")
        lines.extend(details)
        lines.extend(extra)
        w("")

    if a.criterion_dir:
        meds = criterion_medians(a.criterion_dir, a.since or 0)
        w("### In-process (criterion medians, `cargo bench --bench query_paths`)")
        w("")
        if meds:
            w("| benchmark | median |")
            w("|---|---|")
            for name, ns in meds:
                w(f"| {name} | {secs(ns / 1e9)} |")
        else:
            w(f"(no criterion results written by this run under {a.criterion_dir})")
        w("")
    if a.bot and os.path.exists(a.bot):
        w("### Admin bot (`cargo bench --bench bot`)")
        w("")
        # Its table and the notes printed after it (memory, Telegram's limit).
        with open(a.bot) as f:
            out = [line.rstrip("\n") for line in f]
        start = next((i for i, line in enumerate(out) if line.startswith("|")), len(out))
        prev = ""
        for line in out[start:]:
            if prev.startswith("|") and not line.startswith("|") and line:
                w("")  # end the Markdown table before the notes
            w(line)
            prev = line
        w("")

    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run")
    r.add_argument("--stdout")
    r.add_argument("--stderr")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    r.set_defaults(f=cmd_run)

    m = sub.add_parser("make-csv")
    m.add_argument("parquet")
    m.add_argument("out")
    m.set_defaults(f=cmd_make_csv)

    d = sub.add_parser("duckdb-copy")
    d.add_argument("--dsn", required=True)
    d.add_argument("--relation", required=True)
    d.add_argument("--out", required=True)
    d.set_defaults(f=cmd_duckdb_copy)

    n = sub.add_parser("rows")
    n.add_argument("file")
    n.set_defaults(f=cmd_rows)

    rep = sub.add_parser("report")
    rep.add_argument("--results")
    rep.add_argument("--facts")
    rep.add_argument("--out")
    rep.add_argument("--criterion-dir")
    rep.add_argument("--since", type=float)
    rep.add_argument("--bot")
    rep.set_defaults(f=cmd_report)

    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()

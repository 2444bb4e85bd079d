"""``lutfarm db …``: move a store between a file and a lab's shared PostgreSQL database, check
it, back it up."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from lutfarm.cli import cli
from lutfarm.cli.options import STORE, db_option
from lutfarm.cli.output import err, out


@cli.group()
def db() -> None:
    """Copy, check and back up stores, and see what one holds.

    \b
    A lab shares one PostgreSQL store: --db postgresql://user@host:port/dbname (or $LUTFARM_DB)
    on every command; SQLite files stay the embedded default.
    """


@db.command("copy")
@click.option("--from", "source", type=STORE, required=True, help="store to read (file or URL)")
@click.option("--to", "target", type=STORE, required=True,
              help="store to write (file or URL; created if new)")
@click.option("--json", "as_json", is_flag=True)
def copy_cmd(source, target, as_json):
    """Copy every measurement, context, campaign and report that TARGET lacks.

    Values are copied unchanged (raw samples included); this machine's 'local' device takes the
    target's name for it. Rows already in the target are skipped: an interrupted copy resumes.
    """
    from lutfarm.errors import LutfarmError
    from lutfarm.profiler.store import Store
    from lutfarm.profiler.store.copy import copy_store

    if str(source) == str(target):
        raise LutfarmError("--from and --to are the same store; give two different stores")
    with Store(source) as src, Store(target) as dst:
        with Progress("copying", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("measurements", total=None)
            summary = copy_store(src, dst, lambda done, total: bar.update(task, completed=done,
                                                                          total=total))
        if as_json:
            out.print_json(json.dumps({"from": src.location, "to": dst.location,
                                       "copied": summary.copied, "skipped": summary.skipped}))
        else:
            out.print(f"{summary.line()}\n  from {src.location}\n  to   {dst.location}")


@db.command("info")
@db_option
@click.option("--json", "as_json", is_flag=True)
def info_cmd(db, as_json):
    """What a store holds: rows per table and the configurations measured."""
    from lutfarm.profiler.store import Store

    with Store(db) as store:
        counts = store.row_counts()
        configs = store.configurations()
        info = {"store": store.location, "kind": store.dialect, "local_device": store.local_name,
                "rows": counts, "configurations": [
                    {"target": t, "runtime": r, "cases": n} for t, r, n in configs]}
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(f"{info['store']} ({info['kind']}; this machine is '{info['local_device']}')")
    out.print("  " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    for c in info["configurations"]:
        out.print(f"  {c['target']:<24} {c['runtime']:<28} {c['cases']} cases")


@db.command("timeline")
@click.argument("campaign", type=int, required=False)
@db_option
@click.option("--json", "as_json", is_flag=True)
def timeline_cmd(campaign, db, as_json):
    """Where each board's time went in CAMPAIGN (default: the newest that recorded a timeline).

    Share of the boards' wall time per phase (connect, lock, deploy, agent start, upload, job,
    ...) overall and per board, and the scheduling efficiency: busy (job) board time over
    boards x wall. The dashboard draws the same spans as a Gantt chart per campaign.
    """
    from dataclasses import asdict

    from lutfarm.errors import LutfarmError
    from lutfarm.profiler.devices.timeline import summarise
    from lutfarm.profiler.store import Store

    with Store(db) as store:
        if campaign is None:
            campaign = store.last_timeline_campaign()
            if campaign is None:
                raise LutfarmError(f"no campaign in {store.location} recorded a timeline; run "
                                   f"lutfarm profile first")
        spans = store.timeline(campaign)
    if not spans:
        raise LutfarmError(f"campaign {campaign} has no timeline (none in this store, or it ran "
                           f"before lutfarm recorded timelines); see lutfarm db info")
    summary = summarise(spans)
    if as_json:
        out.print_json(json.dumps({"campaign": campaign, "wall_s": summary.wall_s,
                                   "efficiency": summary.efficiency, "share": summary.share,
                                   "idle": summary.idle(), "per_board": summary.per_board,
                                   "spans": [asdict(s) for s in spans]}))
        return
    out.print(f"campaign {campaign}: " + "\n".join(summary.lines()), highlight=False,
              soft_wrap=True)


@db.command("check")
@db_option
@click.option("--json", "as_json", is_flag=True)
def check_cmd(db, as_json):
    """Check a store's pages (SQLite's integrity check; PostgreSQL: the server answers with a
    lutfarm schema). Exit 1 when damaged."""
    from lutfarm.profiler.store import Store

    with Store(db) as store:
        found = store.check()
    if as_json:
        out.print_json(json.dumps({"store": store.location, "ok": not found, "problems": found}))
    elif found:
        out.print(f"{store.location} is damaged: {len(found)} problem(s), e.g.")
        for line in found[:5]:
            out.print(f"  {line}")
        out.print("restore a backup (lutfarm db backup makes one) or salvage it: "
                  f"sqlite3 {store.location} .recover | sqlite3 recovered.db")
    else:
        out.print(f"{store.location}: ok")
    if found:
        raise SystemExit(1)


@db.command("backup")
@db_option
@click.option("-o", "--out", "target", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="new file for the copy")
def backup_cmd(db, target):
    """Copy an SQLite store into a new file with SQLite's online backup API: consistent while
    campaigns write to it."""
    from lutfarm.profiler.store import Store

    with Store(db) as store:
        made = store.backup(target)
        rows = store.row_counts()["measurements"]
    out.print(f"backed up {store.location} ({rows} measurements) to {made}")


@db.command("replay")
@click.argument("journal", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def replay_cmd(journal, db):
    """Write a journal a controller left when the shared store stayed away (its path is in
    the controller's last error) into the store; nothing already stored is stored twice."""
    from lutfarm.profiler.scheduling.journal import Journal
    from lutfarm.profiler.store import Store

    entries = Journal(journal)
    total = len(entries)
    with Store(db) as store:
        stored, dropped = entries.replay(store)
    out.print(f"{stored} of {total} results are in {store.location}"
              + (f"; {len(dropped)} dropped: another controller took those cases over"
                 if dropped else ""))

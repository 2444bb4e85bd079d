"""``lutfarm serve``: a read-only web dashboard over a store (FastAPI, server-rendered pages).

Boards, campaigns (live), LUTs (heatmap, distribution, validation, downloads, comparison),
model files timed by ``lutfarm bench`` (with their per-operator profiles) and stored reports. Every page opens the store for its own request, so one slow page never holds
another's connection, and a PostgreSQL store shows what every controller writes as it lands.
Only GET routes exist. With a token, every request must carry it (``?token=`` once: a cookie
keeps it).
"""

from __future__ import annotations

import datetime
import hmac
import json
import os
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates

from lutfarm.dashboard import plots
from lutfarm.lut import LatencyTable
from lutfarm.lut.build import build_lut
from lutfarm.lut.io import lut_text
from lutfarm.lut.metrics import latency_metrics
from lutfarm.lut.table import LUTError
from lutfarm.lut.validation_report import stored_validation
from lutfarm.profiler.devices.timeline import PHASES, summarise
from lutfarm.profiler.mcu_target import describe_target
from lutfarm.profiler.store import Store
from lutfarm.profiler.store import aggregates as queries
from lutfarm.profiler.store.drivers import is_postgres, redact
from lutfarm.spaces.registry import family_of
from lutfarm.workflows.bench_model import op_table, slowest_nodes

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "lutfarm_token"


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    s = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit} ago"
    return f"{s:.0f} s ago"


def _when(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


TEMPLATES.env.filters.update(ago=_ago, when=_when)


def create_app(db: str | os.PathLike, token: str | None = None) -> FastAPI:
    """The dashboard of the store at ``db`` (an SQLite file or a ``postgresql://`` URL)."""
    app = FastAPI(title="lutfarm", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if token is not None:
            given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
            if not hmac.compare_digest(given, token):
                return PlainTextResponse("this dashboard needs its token: open it with ?token=…",
                                         status_code=401)
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return await call_next(request)

    def page(request: Request, name: str, **context) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, name, {"store": store_name(), **context})

    def store_name() -> str:
        return redact(str(db)) if is_postgres(db) else str(db)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        with Store(db) as store:
            boards = queries.boards(store)
            camps = queries.campaigns(store, limit=10)
            configs = queries.configurations(store)
        return page(request, "index.html", boards=boards, campaigns=camps, configs=configs,
                    running=any(c.state == "running" for c in camps))

    @app.get("/boards", response_class=HTMLResponse)
    def boards_page(request: Request):
        with Store(db) as store:
            boards = queries.boards(store)
        return page(request, "boards.html", boards=boards)

    @app.get("/campaigns", response_class=HTMLResponse)
    def campaigns_page(request: Request):
        with Store(db) as store:
            camps = queries.campaigns(store)
        return page(request, "campaigns.html", campaigns=camps,
                    running=any(c.state == "running" for c in camps))

    @app.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
    def campaign_page(request: Request, campaign_id: int):
        with Store(db) as store:
            found = queries.campaigns(store, campaign_id=campaign_id)
            if not found:
                raise HTTPException(404, f"no campaign {campaign_id} in this store")
            failures = queries.campaign_failures(store, campaign_id)
            spans = store.timeline(campaign_id)
        board_time = summarise(spans) if spans else None
        chart = plots.gantt(spans, PHASES, board_time.lines()[0]) if spans else None
        return page(request, "campaign.html", c=found[0], failures=failures,
                    running=found[0].state == "running", board_time=board_time, gantt=chart,
                    phases=[p for p in PHASES if board_time and p in board_time.share])

    @app.get("/luts", response_class=HTMLResponse)
    def luts_page(request: Request):
        with Store(db) as store:
            configs = queries.configurations(store)
        return page(request, "luts.html", configs=configs)

    def load(store: Store, target: str, runtime: str):
        try:
            return build_lut(store, target, runtime)
        except LUTError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/lut", response_class=HTMLResponse)
    def lut_page(request: Request, target: str, runtime: str):
        with Store(db) as store:
            lut = load(store, target, runtime)
            emulated = store.emulated(target, runtime)
            validation = stored_validation(store, target, runtime)
        values = np.array(list(lut.latency_ms.values()), float)
        figures = {"distribution": plots.distribution(values, f"{len(values)} entries")}
        layout = lut.layout
        if family_of(layout.space) == "chain":
            from lutfarm.spaces.fbnet import OPS
            table = LatencyTable(lut)
            figures["heatmap"] = plots.heatmap(table.matrix, [o.name for o in OPS],
                                               f"{lut.layout_name}: layer x op, ms")
        points = validation.points if validation else []
        if points:
            measured = np.array([p["measured_ms"] for p in points])
            shown = {name: np.array([p[f"{key}_ms"] for p in points])     # what the family has
                     for name, key in (("plain sum", "plain"), ("adjacent pairs", "paired"),
                                       ("corrected", "corrected"))
                     if all(f"{key}_ms" in p for p in points)}
            figures["validation"] = plots.scatter(measured, shown, "measured network (ms)",
                                                  "predicted (ms)", f"{len(points)} networks")
        top = sorted(lut.latency_ms.items(), key=lambda kv: -kv[1])[:15]
        return page(request, "lut.html", lut=lut, target=target, runtime=runtime,
                    figures=figures, validation=validation, emulated=emulated, top=top,
                    mcu=describe_target(lut.target),
                    missing=len(lut.missing_cases()))

    @app.get("/lut/download")
    def lut_download(target: str, runtime: str, format: str = "csv"):
        if format not in ("csv", "json"):
            raise HTTPException(400, "format is csv or json")
        with Store(db) as store:
            lut = load(store, target, runtime)
        name = f"lut-{target}-{runtime}.{format}".replace("/", "_").replace("@", "_at_")
        return Response(lut_text(lut, f".{format}"),
                        media_type="text/csv" if format == "csv" else "application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, a: str = "", b: str = ""):
        with Store(db) as store:
            configs = queries.configurations(store)
            result = None
            if a and b:
                luts = [load(store, *_config(x)) for x in (a, b)]
                common = sorted(set(luts[0].latency_ms) & set(luts[1].latency_ms))
                if len(common) < 3:
                    raise HTTPException(400, f"the two LUTs share {len(common)} cases; "
                                             f"compare LUTs of one layout")
                x = np.array([luts[0].latency_ms[k] for k in common])
                y = np.array([luts[1].latency_ms[k] for k in common])
                ratio = y / x
                result = {"n": len(common), "metrics": latency_metrics(y, x),
                          "ratio_quartiles": np.percentile(ratio, [25, 50, 75]).tolist(),
                          "figure": plots.scatter(x, {"cases": y}, f"{a} (ms)", f"{b} (ms)",
                                                  f"{len(common)} shared cases")}
        return page(request, "compare.html", configs=configs, a=a, b=b, result=result)

    def read(query, *args, **kwargs):
        """One query on the store, opened for this request alone."""
        with Store(db) as store:
            return query(store, *args, **kwargs)

    @app.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request):
        return page(request, "reports.html", reports=read(queries.reports))

    @app.get("/reports/{report_id}", response_class=HTMLResponse)
    def report_page(request: Request, report_id: int):
        r = read(queries.report, report_id)
        if r is None:
            raise HTTPException(404, f"no report {report_id} in this store")
        body = {k: v for k, v in r["report"].items() if k != "points"}
        return page(request, "report.html", r=r, text=json.dumps(body, indent=1)[:200_000])

    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request):
        return page(request, "models.html", rows=read(queries.model_benches))

    @app.get("/models/{measurement_id}", response_class=HTMLResponse)
    def model_page(request: Request, measurement_id: int):
        found = read(queries.model_benches, measurement_id=measurement_id)
        if not found:
            raise HTTPException(404, f"no model measurement {measurement_id} in this store")
        b = found[0]
        profile = b.ops or {}
        by_op = op_table(profile) if profile.get("nodes") else []
        chart = plots.op_shares(by_op, f"{b.model} on {b.measurement.device}, "
                                       f"{b.measurement.runtime}") if by_op else ""
        return page(request, "model.html", b=b, m=b.measurement, profile=profile, by_op=by_op,
                    nodes=slowest_nodes(profile, 20) if by_op else [], chart=chart)

    return app


def _config(value: str) -> tuple[str, str]:
    """``target|runtime`` -> (target, runtime)."""
    target, sep, runtime = value.partition("|")
    if not sep:
        raise HTTPException(400, f"{value!r}: give a LUT as target|runtime")
    return target, runtime

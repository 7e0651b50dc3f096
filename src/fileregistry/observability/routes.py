"""/metrics and /readyz. Open without a token, like /healthz (see docs/observability.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fileregistry.observability import metrics
from fileregistry.observability.health import readiness_problem

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (text exposition format). No token: scrapers rarely send custom headers;
    nothing secret is exposed. Restrict who can reach it at the network level."""
    body = await metrics.render(request.app.state.sessions)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", responses={503: {"description": "Not ready; `detail` names the problem."}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database answers and its schema is at the current migration head,
    else 503 naming the problem."""
    problem = await readiness_problem(request.app.state.engine)
    if problem is not None:
        return JSONResponse(status_code=503, content={"status": "unready", "detail": problem})
    return JSONResponse(content={"status": "ready"})

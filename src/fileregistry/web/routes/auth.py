"""Sign in, sign out, and the UI's front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from fileregistry.auth.ratelimit import client_key, get_limiter
from fileregistry.web.login import check_password
from fileregistry.web.routing import LOGIN, SessionDep, UIRoute, codec_for, render
from fileregistry.web.security import HOME, safe_next

router = APIRouter(route_class=UIRoute, include_in_schema=False)

BAD_LOGIN = "Invalid username or password."
MAX_PASSWORD = 4096


@router.get("/ui", response_class=Response)
@router.get("/ui/", response_class=Response)
async def home() -> Response:
    return RedirectResponse("/ui/sources", status_code=303)


@router.get(LOGIN, response_class=Response)
async def login_form(request: Request, session: SessionDep, next: str | None = Query(None)) -> Response:
    target = safe_next(next)
    if session.user_id is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", {"next": target if target != HOME else "", "username": ""})


@router.post(LOGIN, response_class=Response)
async def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=150)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    target = safe_next(next)
    ctx = {"next": target if target != HOME else "", "username": username}
    # Failed sign-ins per client IP (in memory, per process), with the token endpoints' policy.
    limiter, who = get_limiter(request, "ui_login_limiter"), client_key(request)
    wait = limiter.retry_after(who)
    if wait:
        ctx["error"] = f"Too many failed sign-in attempts from your address. Try again in {wait} s."
        return render(request, "login.html", ctx, status_code=429, headers={"Retry-After": str(wait)})
    user = await check_password(request.app.state.sessions, username.strip(), password)
    if user is None:
        limiter.record_failure(who)
        ctx["error"] = BAD_LOGIN
        return render(request, "login.html", ctx, status_code=401)
    codec = codec_for(request)
    session.sign_in(user.id, codec.password_fingerprint(user.password_hash), codec.ttl_seconds)
    return RedirectResponse(target, status_code=303)


@router.post("/ui/logout", response_class=Response)
async def logout(session: SessionDep) -> Response:
    session.sign_out()
    session.flash("info", "You are signed out.")
    return RedirectResponse(LOGIN, status_code=303)

"""What every UI route shares: the session, sign-in check, CSRF check, error pages, rendering.

All of it lives in :class:`UIRoute` (the UI routers' ``route_class``), so a route cannot forget
it: each request loads the signed session cookie, sends a visitor who is not signed in to the
sign-in page (keeping the page as ``?next=``), checks the CSRF token of every POST, renders an
:class:`AppError` as an HTML page with its status, and writes the cookie back when it changed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from fileregistry.auth.models import User
from fileregistry.db import utcnow
from fileregistry.errors import AppError, Forbidden
from fileregistry.web.login import load_user
from fileregistry.web.security import HOME, SECURITY_HEADERS, csrf_ok, safe_next
from fileregistry.web.session import COOKIE, COOKIE_PATH, SessionCodec, UISession, load_key
from fileregistry.web.templating import make_templates

LOGIN = "/ui/login"
PUBLIC_PATHS = frozenset({LOGIN})
ADMIN_REQUIRED = "This action requires an admin user."

templates = make_templates()


class LoginRequired(Exception):
    pass


def codec_for(request: Request) -> SessionCodec:
    state = request.app.state
    codec = getattr(state, "ui_session_codec", None)
    if codec is None:
        settings = state.settings
        codec = SessionCodec(load_key(settings), settings.ui_session_hours * 3600)
        state.ui_session_codec = codec
    return codec


def ui_session(request: Request) -> UISession:
    return request.state.ui_session


def ui_user(request: Request) -> User:
    return request.state.ui_user


def ui_admin(request: Request) -> User:
    user: User = request.state.ui_user
    if not user.is_admin:
        raise Forbidden(ADMIN_REQUIRED)
    return user


SessionDep = Annotated[UISession, Depends(ui_session)]
UIUser = Annotated[User, Depends(ui_user)]
UIAdmin = Annotated[User, Depends(ui_admin)]


def _here(request: Request) -> str:
    """The current page as a local path + query (for ``?next=``)."""
    q = request.url.query
    return request.url.path + (f"?{q}" if q else "")


def _referer_path(request: Request) -> str | None:
    ref = request.headers.get("referer")
    if not ref:
        return None
    parts = urlsplit(ref)
    if parts.netloc and parts.netloc != request.headers.get("host"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login_url(next_url: str | None) -> str:
    target = safe_next(next_url, default="")
    return LOGIN + (f"?next={quote(target, safe='/')}" if target and target != HOME else "")


def _login_redirect(request: Request, session: UISession) -> Response:
    if request.method == "GET":
        back = _here(request)
    else:  # a form posted after the sign-in ran out: come back to the page that had the form
        back = _referer_path(request) or HOME
    if session.expired:
        session.flash("info", "Your session has expired. Sign in again to continue.")
    return RedirectResponse(login_url(back), status_code=303)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    session: UISession | None = getattr(request.state, "ui_session", None)
    ctx = {
        "request": request,
        "user": getattr(request.state, "ui_user", None),
        "csrf": session.csrf if session else "",
        "flashes": session.pop_flashes() if session else [],
        "here": _here(request),
        "now": utcnow(),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def error_page(request: Request, status_code: int, message: str, title: str | None = None) -> HTMLResponse:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid input",
              429: "Too many attempts", 502: "The SFTP server failed", 504: "The SFTP server timed out"}
    title = title or titles.get(status_code, "Something went wrong")
    return render(request, "error.html", {"title": title, "message": message, "status": status_code},
                  status_code=status_code)


def _finish(request: Request, response: Response, session: UISession, codec: SessionCodec) -> Response:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    if session.modified:
        secure = request.url.scheme == "https"
        if session.user_id is not None:
            max_age = max(0, int(session.expires_at - time.time()))
            response.set_cookie(COOKIE, codec.dumps(session), max_age=max_age, path=COOKIE_PATH, httponly=True,
                                samesite="lax", secure=secure)
        else:  # anonymous: a browser-session cookie holding the sign-in form's CSRF token
            response.set_cookie(COOKIE, codec.dumps(session), path=COOKIE_PATH, httponly=True, samesite="lax",
                                secure=secure)
    return response


class UIRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        original = super().get_route_handler()
        public = self.path in PUBLIC_PATHS

        async def handler(request: Request) -> Response:
            codec = codec_for(request)
            session = codec.loads(request.cookies.get(COOKIE))
            request.state.ui_session = session
            try:
                response = await self._guarded(request, session, codec, public, original)
            except LoginRequired:
                response = _login_redirect(request, session)
            except AppError as exc:
                response = error_page(request, exc.status_code, exc.message)
            except RequestValidationError:
                response = error_page(request, 400, "This address has a parameter the page does not understand.")
            return _finish(request, response, session, codec)

        return handler

    @staticmethod
    async def _guarded(request: Request, session: UISession, codec: SessionCodec, public: bool,
                       original: Callable[[Request], Awaitable[Response]]) -> Response:
        if not public:
            if session.user_id is None:
                raise LoginRequired
            user = await load_user(request.app.state.sessions, session.user_id)
            if (user is None or not user.is_active or not user.password_hash
                    or codec.password_fingerprint(user.password_hash) != session.pw):
                session.sign_out()  # disabled, deleted, or the password changed since sign-in
                session.expired = True
                raise LoginRequired
            request.state.ui_user = user
        if request.method == "POST":
            form = await request.form()
            token = form.get("csrf") or request.headers.get("x-csrf-token")
            if not csrf_ok(session.csrf, token if isinstance(token, str) else None):
                return error_page(
                    request, 403,
                    "This form was not sent from the page this server gave you, or that page is too old. "
                    "Go back, reload the page and try again.", title="Form expired")
        return await original(request)


async def run_action(request: Request, action: Callable[[], Awaitable[str]], back: str) -> Response:
    """Run a state-changing use case; flash its message (or the AppError's) and go back (POST-redirect-GET)."""
    session: UISession = request.state.ui_session
    try:
        message = await action()
        session.flash("success", message)
    except AppError as exc:
        session.flash("error", exc.message)
    return RedirectResponse(safe_next(back), status_code=303)

"""Web hardening: security headers, cookies for the host and the admin, CSRF, who may create.

- Every response gets its security headers in one place, :func:`security_headers`, an
  ``on_response_prepare`` hook rather than a middleware: a middleware never sees the
  responses a handler prepares itself (the streamed CSV report, the sidebar WebSocket),
  and those must not name the server's versions either.
- The host's credential leaves the address bar after the first visit: ``/host/{id}?token=``
  puts it in an HttpOnly, SameSite=Strict cookie scoped to that meeting's paths, and the
  page, its WebSocket and its API calls authenticate by that cookie. API clients keep
  using ``Authorization: Bearer``.
- Creating a meeting needs the admin token (:mod:`bot.admin_token`) as a Bearer header,
  in the home page's form once (the browser then keeps an admin cookie), or the
  ``security.open_creation`` setting.
- HTML forms carry a CSRF token tied to a cookie: the cookie holds a random nonce and the
  form an HMAC of it under a key that lives only in this process, so a cookie planted by
  a neighbouring site cannot be paired with a forged form.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from http.cookies import Morsel
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from bot.admin_token import (
    admin_token_matches,
    admin_token_path,
    read_admin_hash,
    session_matches,
    session_value,
)
from bot.store import token_bytes, tokens_equal
from web.errors import api_error
from web.keys import CSRF_KEY, SETTINGS

#: The Server header: no product versions for anyone to look up.
SERVER_NAME = "meetmood"

#: Pages: own scripts, styles and connections only; ``data:`` for the blank favicon.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: JSON and downloads: nothing may load or run.
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#: The HTML report, a self-contained document the host downloads (``attachment``). Its
#: matplotlib charts are inline SVG with ``style`` attributes and it has one ``<style>``
#: block, which need 'unsafe-inline' for styles; it has no script and loads nothing, so
#: scripts stay forbidden. The same policy is written into the file as a meta tag for
#: when it is opened from disk.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

HOST_COOKIE = "meetmood_host"
ADMIN_COOKIE = "meetmood_admin"
CSRF_COOKIE = "meetmood_csrf"
#: The form field (and, for scripts, the header) that carries the CSRF token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: How long a browser stays signed in as a meeting's host or as the admin.
COOKIE_MAX_AGE_SECS = 30 * 24 * 3600


# -- headers -----------------------------------------------------------------------


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to a response just before it is sent (every response)."""
    headers = response.headers
    headers[hdrs.SERVER] = SERVER_NAME
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers without CSP 2
    is_page = response.content_type == "text/html" and not request.path.startswith("/api/")
    headers.setdefault("Content-Security-Policy", PAGE_CSP if is_page else API_CSP)
    if not request.path.startswith("/static/"):
        # Pages and API answers carry tokens or meeting data: never cache or keep them.
        headers[hdrs.CACHE_CONTROL] = "no-store"


# -- origins and cookies -----------------------------------------------------------


def same_origin(request: web.Request) -> bool:
    """Whether a browser says the request comes from this server's own pages.

    ``Sec-Fetch-Site`` when the browser sends it (``none`` is the user typing the
    address), else ``Origin``; a request with neither is not from a browser page.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    return origin_allowed(request)


def origin_allowed(request: web.Request) -> bool:
    """Whether the Origin header (if any) names this server's host and port."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (CLI tools, tests): the token is the check
    try:
        parts = urlsplit(origin)
    except ValueError:  # "http://[::1": no origin at all, so not ours
        return False
    return bool(parts.netloc) and parts.netloc == request.host


def is_https(request: web.Request) -> bool:
    """Whether browsers reach us over https (directly or through ``server.public_url``)."""
    return request.secure or request.app[SETTINGS].server.public_url.startswith("https://")


def add_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    path: str,
    max_age: int | None = COOKIE_MAX_AGE_SECS,
) -> None:
    """Set an HttpOnly, SameSite=Strict cookie (Secure on https).

    Written as a raw header so one response can set the same name on several paths.
    """
    morsel: Morsel[str] = Morsel()
    morsel.set(name, value, value)
    morsel["path"] = path
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if max_age is not None:
        morsel["max-age"] = str(max_age)
    if is_https(request):
        morsel["secure"] = True
    response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


# -- the host ----------------------------------------------------------------------


def host_cookie_paths(meeting_id: str) -> tuple[str, str]:
    """The paths a meeting's host cookie is sent to: its page and its API."""
    return f"/host/{meeting_id}", f"/api/meetings/{meeting_id}"


def set_host_cookies(
    request: web.Request, response: web.StreamResponse, meeting_id: str, token: str
) -> None:
    """Remember in this browser that it is the meeting's host (page and API paths only)."""
    for path in host_cookie_paths(meeting_id):
        add_cookie(request, response, HOST_COOKIE, token, path)


def host_credential(request: web.Request) -> str | None:
    """The host token a request carries: a Bearer header, else the host cookie.

    A cookie sent with a state-changing request from another site is refused (403).
    """
    auth = request.headers.get(hdrs.AUTHORIZATION, "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer ") :].strip()
    token = request.cookies.get(HOST_COOKIE)
    if token and request.method not in SAFE_METHODS and not same_origin(request):
        raise api_error(web.HTTPForbidden, "cross_site", "a request from another site was refused")
    return token


# -- CSRF --------------------------------------------------------------------------


def csrf_nonce(request: web.Request) -> str:
    """This browser's CSRF nonce (from its cookie), or a new one to set."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    return nonce if 20 <= len(nonce) <= 64 else secrets.token_urlsafe(24)


def csrf_form_token(request: web.Request, nonce: str) -> str:
    """The token a form carries for this nonce."""
    key = request.app[CSRF_KEY]
    return hmac.new(key, token_bytes(nonce), hashlib.sha256).hexdigest()


def remember_csrf(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    """Set the CSRF cookie unless the browser already has this nonce (session-long)."""
    if request.cookies.get(CSRF_COOKIE) != nonce:
        add_cookie(request, response, CSRF_COOKIE, nonce, "/", max_age=None)


def csrf_valid(request: web.Request, submitted: str | None) -> bool:
    """Whether a form (or upload script) came from one of our pages in this browser."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not same_origin(request):
        return False
    return tokens_equal(submitted, csrf_form_token(request, nonce))


CSRF_MESSAGE = (
    "This form has expired or was sent from another site. Reload the page and try again "
    "(cookies must be allowed for this server)."
)


def csrf_failed() -> web.HTTPException:
    """403 for a form without a valid CSRF token (JSON; HTML routes render it as a page)."""
    return api_error(web.HTTPForbidden, "csrf_failed", CSRF_MESSAGE)


# -- who may create meetings ---------------------------------------------------------


class CreationRefused(Exception):
    """The request may not create a meeting: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def api_error(self) -> web.HTTPException:
        """The refusal as the API's JSON error."""
        cls = web.HTTPUnauthorized if self.status == 401 else web.HTTPForbidden
        return api_error(cls, self.code, self.message)


NO_ADMIN_TOKEN = (
    "this server has no admin token yet: `meetmood serve` makes one at first start, "
    "or run `meetmood admin-token`"
)
ADMIN_HINT = (
    "creating a meeting needs the admin token that `meetmood serve` printed at first "
    "start (`meetmood admin-token` makes a new one)"
)


async def _admin_hash(request: web.Request) -> str | None:
    # Read each time (a tiny file, off the loop) so `meetmood admin-token` takes effect
    # on a running server.
    path = admin_token_path(request.app[SETTINGS].storage)
    return await asyncio.to_thread(read_admin_hash, path)


async def is_admin_browser(request: web.Request) -> bool:
    """Whether this browser holds a valid admin cookie."""
    value = request.cookies.get(ADMIN_COOKIE)
    return bool(value) and session_matches(await _admin_hash(request), value)


async def check_creator(
    request: web.Request, form_token: str | None = None, *, cookie_ok: bool = True
) -> str | None:
    """Check that the request may create a meeting.

    Accepted: ``security.open_creation``; the admin token as ``Authorization: Bearer``;
    the admin cookie (when ``cookie_ok``: browser routes that also check CSRF); or the
    admin token typed into a form (``form_token``). Returns the admin cookie value to set
    in the last case, so the browser needs the token only once; else None.

    Raises:
        CreationRefused: none of these.
    """
    if request.app[SETTINGS].security.open_creation:
        return None
    auth = request.headers.get(hdrs.AUTHORIZATION, "")
    stored = await _admin_hash(request)
    if auth.startswith("Bearer "):
        if stored is None:
            raise CreationRefused(403, "admin_token_missing", NO_ADMIN_TOKEN)
        if admin_token_matches(stored, auth[len("Bearer ") :].strip()):
            return None
        raise CreationRefused(403, "admin_token_invalid", "the admin token is not valid")
    if cookie_ok and session_matches(stored, request.cookies.get(ADMIN_COOKIE)):
        return None
    if form_token:
        if stored is None:
            raise CreationRefused(403, "admin_token_missing", NO_ADMIN_TOKEN)
        if admin_token_matches(stored, form_token.strip()):
            return session_value(stored)
        raise CreationRefused(403, "admin_token_invalid", "the admin token is not valid")
    raise CreationRefused(401, "admin_token_required", ADMIN_HINT)


def remember_admin(request: web.Request, response: web.StreamResponse, value: str | None) -> None:
    """Keep this browser signed in as the admin (after it sent the token in a form)."""
    if value:
        add_cookie(request, response, ADMIN_COOKIE, value, "/")

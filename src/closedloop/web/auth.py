"""Sign-in, sign-out and the guards every page uses: session, realm and CSRF checks."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from closedloop.errors import AuthenticationError, PermissionDeniedError
from closedloop.web.accounts import Accounts, Principal, TooManyAttemptsError
from closedloop.web.http import Pages, Redirect
from closedloop.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SessionData,
    Sessions,
    csrf_matches,
    same_origin,
)

__all__ = ["SignedIn", "WebAuth"]

logger = logging.getLogger(__name__)
_TITLES = {"review": "Reviewer sign-in", "admin": "Operator sign-in"}


class SignedIn:
    """The session and principal of a request that passed the guard."""

    def __init__(self, session: SessionData, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


class WebAuth:
    """Guards for the two realms: ``review`` (workers) and ``admin`` (operators)."""

    def __init__(self, accounts: Accounts, sessions: Sessions, pages: Pages) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.pages = pages

    def require(self, request: Request, realm: str) -> SignedIn:
        """The signed-in principal of ``realm``; otherwise a redirect to its sign-in page."""
        session = self.sessions.read(request, realm)
        principal = (
            self.accounts.principal(realm, session.principal_id) if session else None
        )
        if session is None or principal is None:
            if "/api/" in request.url.path:
                raise AuthenticationError(
                    "your session has ended; sign in again", "NotAuthorizedException"
                )
            raise Redirect(f"/{realm}/login")
        return SignedIn(session, principal)

    def require_change(
        self, request: Request, realm: str, sent_token: str | None
    ) -> SignedIn:
        """As ``require``, for a state-changing request: the CSRF token must match."""
        signed_in = self.require(request, realm)
        token = sent_token or request.headers.get(CSRF_HEADER)
        if not same_origin(request) or not csrf_matches(signed_in.csrf_token, token):
            raise PermissionDeniedError(
                "the request's CSRF token is missing or wrong; reload the page and try again"
            )
        return signed_in

    def add_login_routes(self, router: APIRouter, realm: str) -> None:
        """GET and POST /{realm}/login, and POST /{realm}/logout."""

        @router.get(f"/{realm}/login")
        def login_page(request: Request) -> Response:
            if self.sessions.read(request, realm) is not None:
                raise Redirect(f"/{realm}/")
            return self._login_page(request, realm, "", 200)

        @router.post(f"/{realm}/login")
        async def login(
            request: Request,
            username: Annotated[str, Form(max_length=256)] = "",
            password: Annotated[str, Form(max_length=4096)] = "",
            csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=256)] = "",
        ) -> Response:
            if not same_origin(request) or not self.sessions.check_login_token(
                request, realm, csrf_token
            ):
                raise PermissionDeniedError(
                    "the sign-in form has expired or was not sent from this site; reload it"
                )
            try:
                known = self.sessions.knows_device(request, realm, username.strip())
                principal = await run_in_threadpool(
                    self.accounts.sign_in,
                    realm,
                    username,
                    password,
                    request.client.host if request.client else None,
                    known_device=known,
                )
            except TooManyAttemptsError as exc:
                return self._login_page(request, realm, exc.message, 429, username)
            except AuthenticationError as exc:
                return self._login_page(request, realm, exc.message, 401, username)
            response = Response(status_code=303, headers={"location": f"/{realm}/"})
            self.sessions.start(response, realm, principal.id)
            self.sessions.remember_device(request, response, realm, principal.name)
            return response

        @router.post(f"/{realm}/logout")
        def logout(
            request: Request,
            csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=256)] = "",
        ) -> Response:
            self.require_change(request, realm, csrf_token)
            response = Response(
                status_code=303, headers={"location": f"/{realm}/login"}
            )
            self.sessions.end(request, response, realm)
            return response

    def _login_page(
        self, request: Request, realm: str, error: str, status: int, username: str = ""
    ) -> Response:
        response = Response()
        token = self.sessions.login_token(request, response, realm)
        page = self.pages.render(
            "login.html",
            {
                "title": _TITLES[realm],
                "realm": realm,
                "error": error,
                "username": username,
                "csrf_token": token,
                "signed_in": None,
            },
            status,
        )
        for key, value in response.headers.items():
            if key == "set-cookie":
                page.headers.append(key, value)
        return page

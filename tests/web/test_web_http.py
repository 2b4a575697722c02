"""HTTP-level tests of the web UI: sign-in, lockout, CSRF, cookies, headers, access control."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from web_helpers import PASSWORDS, Kit, WebServer, csrf_from, sign_in

from closedloop.api.app import proxy_options
from closedloop.engine import Engine
from closedloop.errors import AuthenticationError
from closedloop.store.models_web import LoginAttempt
from closedloop.web.accounts import (
    CLIENT_LOCKOUT_FAILURES,
    Accounts,
    TooManyAttemptsError,
    client_key,
)

SignInAs = Callable[[str, str], httpx.Client]


def _login(
    client: httpx.Client, realm: str, username: str, password: str
) -> httpx.Response:
    token = csrf_from(client.get(f"/{realm}/login").text)
    return client.post(
        f"/{realm}/login",
        data={"username": username, "password": password, "csrf_token": token},
    )


def _next_task(client: httpx.Client) -> dict[str, Any]:
    token = csrf_from(client.get("/review/work").text)
    response = client.post("/review/api/tasks/next", headers={"x-csrf-token": token})
    assert response.status_code == 200, response.text
    return response.json()["task"]  # type: ignore[no-any-return]


def test_sign_in_sets_a_protected_cookie_and_sign_out_ends_the_session(
    web: WebServer,
) -> None:
    client = httpx.Client(base_url=web.url)
    response = _login(client, "review", "alice", PASSWORDS["alice"])
    assert response.status_code == 303 and response.headers["location"] == "/review/"
    cookie = next(
        c
        for c in response.headers.get_list("set-cookie")
        if c.startswith("closedloop_review=")
    )
    assert (
        "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/review" in cookie
    )
    assert "Secure" not in cookie
    queues = client.get("/review/")
    assert queues.status_code == 200 and "Start working" in queues.text
    stolen = dict(client.cookies)

    client.post("/review/logout", data={"csrf_token": csrf_from(queues.text)})
    again = httpx.get(web.url + "/review/", cookies=stolen)
    assert again.status_code == 303 and again.headers["location"] == "/review/login"


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    web: WebServer,
) -> None:
    client = httpx.Client(base_url=web.url)
    wrong = _login(client, "review", "alice", "not-her-password")
    unknown = _login(client, "review", "nobody-here", "not-a-password-at-all")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong username or password" in wrong.text
    assert "wrong username or password" in unknown.text


def test_five_failures_lock_the_username_even_on_another_server(
    web: WebServer, engine: Engine
) -> None:
    client = httpx.Client(base_url=web.url)
    for _ in range(5):
        assert _login(client, "review", "bob", "guessing-wrong-1").status_code == 401
    locked = _login(client, "review", "bob", PASSWORDS["bob"])
    assert locked.status_code == 429
    assert "too many failed sign-ins for &#39;bob&#39;" in locked.text
    assert "the limit is 5" in locked.text

    second = Engine(engine.settings)
    try:
        with WebServer(second) as other:
            elsewhere = _login(
                httpx.Client(base_url=other.url), "review", "bob", PASSWORDS["bob"]
            )
            assert elsewhere.status_code == 429
    finally:
        second.close()
    assert _login(client, "review", "alice", PASSWORDS["alice"]).status_code == 303


def test_guessing_across_usernames_from_one_address_is_stopped(
    web: WebServer, engine: Engine
) -> None:
    client = httpx.Client(base_url=web.url)
    for i in range(CLIENT_LOCKOUT_FAILURES):
        response = _login(client, "review", f"guess-{i % 4}", "guessing-wrong-1")
        assert response.status_code == 401
    # Four failures each: no username is locked, but this address now is.
    refused = _login(client, "review", "alice", PASSWORDS["alice"])
    assert refused.status_code == 429
    assert "too many failed sign-ins from this address" in refused.text
    assert f"the limit is {CLIENT_LOCKOUT_FAILURES}" in refused.text

    accounts = Accounts(engine.ctx)
    elsewhere = accounts.sign_in("review", "alice", PASSWORDS["alice"], "192.0.2.7")
    assert elsewhere.name == "alice"


def test_parallel_guesses_meet_the_limit_one_at_a_time(
    web: WebServer, engine: Engine
) -> None:
    """Sixteen guesses sent together: only the first five are checked at all."""
    clients = [httpx.Client(base_url=web.url, timeout=60) for _ in range(16)]
    tokens = [csrf_from(c.get("/review/login").text) for c in clients]
    start = threading.Barrier(len(clients))

    def guess(i: int) -> int:
        start.wait()
        form = {"username": "nobody-here", "password": f"guess-{i:04}-wrong"}
        response = clients[i].post(
            "/review/login", data={**form, "csrf_token": tokens[i]}
        )
        return response.status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(guess, range(len(clients))))

    assert statuses == [401] * 5 + [429] * 11
    with engine.ctx.db.read() as session:
        recorded = session.scalar(
            select(func.count()).where(LoginAttempt.username == "nobody-here")
        )
    assert recorded == 5


def test_the_address_limit_spares_browsers_that_signed_in_before_and_no_one_else(
    web: WebServer,
) -> None:
    """Behind one address, a guesser locks out neither the people already working
    there nor learns which usernames they are."""
    alice = httpx.Client(base_url=web.url)
    assert _login(alice, "review", "alice", PASSWORDS["alice"]).status_code == 303
    alice.post(
        "/review/logout", data={"csrf_token": csrf_from(alice.get("/review/").text)}
    )
    guesser = httpx.Client(base_url=web.url)
    for i in range(CLIENT_LOCKOUT_FAILURES):
        response = _login(guesser, "review", f"guess-{i % 4}", "guessing-wrong-1")
        assert response.status_code == 401

    # The guesser, and anyone without the cookie, meets one answer for every name.
    for name in ("alice", "bob", "nobody-here"):
        refused = _login(guesser, "review", name, "guessing-wrong-2")
        assert refused.status_code == 429
        assert "too many failed sign-ins from this address" in refused.text
    fresh = httpx.Client(base_url=web.url)
    assert _login(fresh, "review", "alice", PASSWORDS["alice"]).status_code == 429
    # Alice's own browser signs in; the cookie names alice only, not bob.
    device = {"closedloop_review_device": alice.cookies["closedloop_review_device"]}
    assert _login(alice, "review", "alice", PASSWORDS["alice"]).status_code == 303
    borrowed = httpx.Client(base_url=web.url, cookies=device)
    assert _login(borrowed, "review", "bob", PASSWORDS["bob"]).status_code == 429
    forged = httpx.Client(
        base_url=web.url, cookies={"closedloop_review_device": "e30.x.y"}
    )
    assert _login(forged, "review", "alice", PASSWORDS["alice"]).status_code == 429


def test_the_device_cookie_names_no_one_stays_in_its_realm_and_expires(
    web: WebServer, engine: Engine
) -> None:
    Accounts(engine.ctx).create_operator("alice", PASSWORDS["alice"])
    now = engine.ctx.clock
    old = httpx.Client(base_url=web.url)
    engine.ctx.clock = lambda: now() - timedelta(days=31)
    try:
        assert _login(old, "review", "alice", PASSWORDS["alice"]).status_code == 303
    finally:
        engine.ctx.clock = now
    recent = httpx.Client(base_url=web.url)
    assert _login(recent, "review", "alice", PASSWORDS["alice"]).status_code == 303
    cookie = recent.cookies["closedloop_review_device"]
    payload = base64.urlsafe_b64decode(cookie.rsplit(".", 1)[0].encode())
    assert b"alice" not in payload and b"alice" not in cookie.encode()

    guesser = httpx.Client(base_url=web.url)
    for i in range(CLIENT_LOCKOUT_FAILURES):
        _login(guesser, "review", f"guess-{i % 4}", "guessing-wrong-1")

    as_admin = httpx.Client(
        base_url=web.url, cookies={"closedloop_admin_device": cookie}
    )
    assert _login(as_admin, "admin", "alice", PASSWORDS["alice"]).status_code == 429
    expired = {"closedloop_review_device": old.cookies["closedloop_review_device"]}
    stale = httpx.Client(base_url=web.url, cookies=expired)
    assert _login(stale, "review", "alice", PASSWORDS["alice"]).status_code == 429
    fresh = httpx.Client(base_url=web.url, cookies={"closedloop_review_device": cookie})
    assert _login(fresh, "review", "alice", PASSWORDS["alice"]).status_code == 303


def test_a_known_browser_still_meets_the_per_username_limit(
    engine: Engine, kit: Kit
) -> None:
    accounts = Accounts(engine.ctx)
    office = "203.0.113.40"
    for i in range(CLIENT_LOCKOUT_FAILURES):
        with pytest.raises(AuthenticationError):
            accounts.sign_in("review", f"guess-{i % 4}", "wrong-password-1", office)
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            accounts.sign_in(
                "review", "alice", "wrong-password-1", office, known_device=True
            )
    with pytest.raises(TooManyAttemptsError, match="for 'alice'"):
        accounts.sign_in(
            "review", "alice", PASSWORDS["alice"], office, known_device=True
        )


def _guess_from(client: httpx.Client, addresses: list[str]) -> None:
    for i, address in enumerate(addresses):
        client.headers["x-forwarded-for"] = address
        response = _login(client, "review", f"guess-{i % 4}", "guessing-wrong-1")
        assert response.status_code == 401


def test_a_forwarded_for_header_is_ignored_unless_a_proxy_is_named(
    web: WebServer,
) -> None:
    client = httpx.Client(base_url=web.url)
    spoofed = [f"198.51.100.{i}" for i in range(CLIENT_LOCKOUT_FAILURES)]
    _guess_from(client, spoofed)  # a new address claimed for every guess

    client.headers["x-forwarded-for"] = "192.0.2.200"
    refused = _login(client, "review", "alice", PASSWORDS["alice"])
    assert refused.status_code == 429  # every guess counted against the real address
    assert proxy_options({}) == {"proxy_headers": False}


def test_behind_a_named_proxy_the_forwarded_address_is_the_one_limited(
    engine: Engine, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
    with WebServer(engine) as proxied:
        client = httpx.Client(base_url=proxied.url)
        _guess_from(client, ["203.0.113.9"] * CLIENT_LOCKOUT_FAILURES)
        locked = _login(client, "review", "alice", PASSWORDS["alice"])
        client.headers["x-forwarded-for"] = "192.0.2.55"
        other = _login(client, "review", "alice", PASSWORDS["alice"])
    assert locked.status_code == 429
    assert other.status_code == 303  # another client behind the proxy signs in


def test_failures_from_one_ipv6_network_count_together(
    engine: Engine, kit: Kit
) -> None:
    accounts = Accounts(engine.ctx)
    for i in range(CLIENT_LOCKOUT_FAILURES):
        with pytest.raises(AuthenticationError):
            accounts.sign_in(
                "review", f"guess-{i % 4}", "wrong-password-1", f"2001:db8:1:2::{i:x}"
            )
    with pytest.raises(TooManyAttemptsError):
        accounts.sign_in("review", "alice", PASSWORDS["alice"], "2001:db8:1:2:ffff::1")
    elsewhere = accounts.sign_in(
        "review", "alice", PASSWORDS["alice"], "2001:db8:1:3::1"
    )
    assert elsewhere.name == "alice"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_forms_and_fetches_without_the_csrf_token_are_refused(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    anonymous = httpx.Client(base_url=web.url)
    anonymous.get("/review/login")
    no_token = anonymous.post(
        "/review/login", data={"username": "alice", "password": PASSWORDS["alice"]}
    )
    assert no_token.status_code == 403 and "reload" in no_token.text

    alice = sign_in_as("review", "alice")
    token = csrf_from(alice.get("/review/work").text)
    assert alice.post("/review/api/tasks/next").status_code == 403
    assert (
        alice.post(
            "/review/api/tasks/next", headers={"x-csrf-token": "forged"}
        ).status_code
        == 403
    )
    cross_site = alice.post(
        "/review/api/tasks/next",
        headers={"x-csrf-token": token, "origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert alice.post("/review/logout", data={}).status_code == 403
    assert alice.get("/review/").status_code == 200

    olive = sign_in_as("admin", "olive")
    toggle = olive.post("/admin/flows/triage/prediction", data={"show": "on"})
    assert toggle.status_code == 403


def test_every_page_carries_the_security_headers(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    alice = sign_in_as("review", "alice")
    olive = sign_in_as("admin", "olive")
    pages = [
        httpx.get(web.url + "/review/login"),
        httpx.get(web.url + "/admin/login"),
        alice.get("/review/"),
        alice.get("/review/work"),
        olive.get("/admin/"),
        olive.get("/admin/loops/no-such-loop"),
    ]
    for page in pages:
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
    assert pages[-1].status_code == 404 and "does not exist" in pages[-1].text


def test_task_frame_is_served_under_a_strict_policy_with_a_nonce(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    alice = sign_in_as("review", "alice")
    task = _next_task(alice)
    frame = alice.get(task["frameUrl"])
    csp = frame.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in frame.text
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == f"'nonce-{nonce.group(1)}'"
    assert "connect-src" not in directives
    assert "unsafe-inline" not in directives["script-src"]
    assert (
        directives["style-src"] == "'self' 'unsafe-inline'"
    )  # a template's own styles
    assert directives["media-src"] == f"'self' {web.url} blob:"
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    work = alice.get("/review/work").text
    assert (
        'sandbox="allow-scripts allow-forms"' in work
        and "allow-same-origin" not in work
    )
    assert alice.get("/review/static/review.js").status_code == 200
    assert alice.get("/review/static/..%2Fhttp.py").status_code == 404


def test_a_worker_cannot_open_the_operator_pages(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    alice = sign_in_as("review", "alice")
    for path in (
        "/admin/",
        "/admin/flows",
        "/admin/loops",
        "/admin/workers",
        "/admin/monitoring",
        "/admin/events",
    ):
        response = alice.get(path)
        assert (
            response.status_code == 303
            and response.headers["location"] == "/admin/login"
        )
    cookie = alice.cookies["closedloop_review"]
    forged = httpx.get(web.url + "/admin/", cookies={"closedloop_admin": cookie})
    assert forged.status_code == 303
    wrong_realm = _login(
        httpx.Client(base_url=web.url), "admin", "alice", PASSWORDS["alice"]
    )
    assert wrong_realm.status_code == 401

    olive = sign_in_as("admin", "olive")
    for path in (
        "/admin/",
        "/admin/flows",
        "/admin/loops",
        "/admin/workers",
        "/admin/monitoring",
        "/admin/events",
    ):
        assert olive.get(path).status_code == 200


def test_a_worker_cannot_see_or_answer_another_teams_task(
    web: WebServer, sign_in_as: SignInAs, kit: Kit
) -> None:
    carol = sign_in_as("review", "carol")
    secret = _next_task(carol)
    assert secret["flow"] == kit.other_flow

    alice = sign_in_as("review", "alice")
    token = csrf_from(alice.get("/review/work").text)
    assert alice.get(secret["frameUrl"]).status_code == 404
    answer = alice.post(
        f"/review/api/tasks/{secret['taskId']}/answer",
        json={"answerContent": {"category": {"label": "fraud"}}},
        headers={"x-csrf-token": token},
    )
    assert answer.status_code == 409 and "not leased to you" in answer.json()["message"]
    mine = _next_task(alice)
    assert mine["flow"] == kit.flow
    assert "secret" not in alice.get("/review/").text


def test_prediction_is_hidden_until_an_operator_shows_it(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    alice = sign_in_as("review", "alice")
    task = _next_task(alice)
    assert "model says: fraud-0" not in alice.get(task["frameUrl"]).text

    olive = sign_in_as("admin", "olive")
    flows = olive.get("/admin/flows")
    assert "hidden" in flows.text
    shown = olive.post(
        "/admin/flows/triage/prediction",
        data={"show": "on", "csrf_token": csrf_from(flows.text)},
    )
    assert shown.status_code == 303
    assert "shown" in olive.get("/admin/flows").text
    assert "model says: fraud-0" in alice.get(task["frameUrl"]).text


def test_answer_moves_on_and_a_lost_lease_says_so(
    web: WebServer, sign_in_as: SignInAs, engine: Engine, kit: Kit
) -> None:
    alice = sign_in_as("review", "alice")
    token = csrf_from(alice.get("/review/work").text)
    headers = {"x-csrf-token": token}
    first = _next_task(alice)
    answered = alice.post(
        f"/review/api/tasks/{first['taskId']}/answer",
        json={"answerContent": {"category": {"label": "legit"}}},
        headers=headers,
    )
    assert answered.status_code == 200 and answered.json()["answersReceived"] == 1
    second = _next_task(alice)
    assert second["taskId"] != first["taskId"]

    engine.loops.stop(kit.loops[1])
    lost = alice.post(
        f"/review/api/tasks/{second['taskId']}/answer",
        json={"answerContent": {"category": {"label": "legit"}}},
        headers=headers,
    )
    assert (
        lost.status_code == 409 and "it takes no more answers" in lost.json()["message"]
    )
    bad = alice.post(
        f"/review/api/tasks/{second['taskId']}/answer", content=b"[1]", headers=headers
    )
    assert bad.status_code == 400 and "answerContent" in bad.json()["message"]


def test_an_answer_that_does_not_fit_the_task_ui_is_refused_and_the_task_kept(
    engine: Engine, kit: Kit
) -> None:
    from closedloop.core.tasks import Tasks
    from closedloop.templates.answers import check_answer

    engine.tasks = Tasks(engine.ctx, engine.loops, check_answer)  # as the app wires it
    with WebServer(engine) as web:
        alice = sign_in(web.url, "review", "alice", PASSWORDS["alice"])
        token = csrf_from(alice.get("/review/work").text)
        task = _next_task(alice)
        url = f"/review/api/tasks/{task['taskId']}/answer"
        headers = {"x-csrf-token": token}
        wrong = alice.post(
            url,
            json={"answerContent": {"category": {"label": "maybe"}}},
            headers=headers,
        )
        assert wrong.status_code == 400 and "maybe" in wrong.json()["message"]
        assert _next_task(alice)["taskId"] == task["taskId"]
        right = alice.post(
            url,
            json={"answerContent": {"category": {"label": "fraud"}}},
            headers=headers,
        )
        assert right.status_code == 200


def test_skip_hands_over_a_different_task(web: WebServer, sign_in_as: SignInAs) -> None:
    bob = sign_in_as("review", "bob")
    token = csrf_from(bob.get("/review/work").text)
    first = _next_task(bob)
    skipped = bob.post(
        f"/review/api/tasks/{first['taskId']}/skip", headers={"x-csrf-token": token}
    )
    assert skipped.status_code == 200
    assert skipped.json()["task"]["taskId"] != first["taskId"]


def test_queue_page_counts_the_tasks_waiting_per_flow(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    html = sign_in_as("review", "alice").get("/review/").text
    row = re.search(
        r"<td>reviewers</td><td>triage</td><td>Review triage</td><td class=\"num\">(\d+)</td>",
        html,
    )
    assert row and row.group(1) == "3"


def test_operator_overview_shows_loop_counts_and_queue_depth(
    web: WebServer, sign_in_as: SignInAs
) -> None:
    html = sign_in_as("admin", "olive").get("/admin/").text
    assert re.search(r'id="queue-depth">7<', html)
    loop = sign_in_as("admin", "olive").get("/admin/loops/loop-0").text
    assert "s3://reviews/out/triage/" in loop and "loop-item-0" in loop


def test_user_text_is_escaped_in_operator_pages(
    web: WebServer, sign_in_as: SignInAs, kit: Kit
) -> None:
    kit.engine.loops.start(
        "xss-loop",
        kit.engine.flows.arn(kit.flow),
        '{"item": "<script>alert(1)</script>"}',
    )
    html = sign_in_as("admin", "olive").get("/admin/loops/xss-loop").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html or "\\u003cscript" in html


def test_cookies_are_secure_when_asked(engine: Engine, kit: Kit) -> None:
    from closedloop.api.app import create_app

    app = create_app(engine, sweep=False, secure_cookies=True)
    transport = httpx.ASGITransport(app=app)
    import asyncio

    async def go() -> str:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test"
        ) as client:
            page = await client.get("/review/login")
            return page.headers["set-cookie"]

    assert "Secure" in asyncio.run(go())
    assert sign_in  # the shared helper stays importable

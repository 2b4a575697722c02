"""Tests that requests signed by botocore and boto3 verify, and altered ones do not."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from closedloop.api import sigv4
from closedloop.api.sigv4 import Credential, SignedRequest, verify_request
from closedloop.errors import AuthenticationError

ACCESS_KEY = "CLAKIDEXAMPLE0000001"
SECRET = "cl-secret/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:8787"
FLOW_ARN = "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/fd-1"

Params = list[tuple[str, str]]


def _secrets(access_key_id: str) -> str | None:
    return SECRET if access_key_id == ACCESS_KEY else None


def _sign(
    method: str,
    url: str,
    *,
    params: Params | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
    access_key: str = ACCESS_KEY,
    service: str = "sagemaker",
) -> SignedRequest:
    """Sign with botocore, then return the request as the server would receive it."""
    # A list of pairs (which botocore accepts) is the only way to repeat a key.
    pairs: Any = params or []
    request = AWSRequest(
        method=method, url=url, data=body, params=pairs, headers=headers or {}
    )
    SigV4Auth(Credentials(access_key, secret), service, "us-east-1").add_auth(request)
    return _as_received(request.prepare())


def _as_received(prepared: Any) -> SignedRequest:
    url = urlsplit(prepared.url)
    # The HTTP client adds Host itself; botocore signs the value it will send.
    headers = [("Host", url.netloc), *prepared.headers.items()]
    body = prepared.body or b""
    return SignedRequest(prepared.method, url.path, url.query, headers, body)


def _signing_time(request: SignedRequest) -> datetime:
    stamp = _header(request, "x-amz-date")
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _header(request: SignedRequest, name: str) -> str:
    return next(value for key, value in request.headers if key.lower() == name)


def _verify(request: SignedRequest, **kwargs: Any) -> Credential:
    if "now" not in kwargs:
        kwargs["now"] = _signing_time(request)
    return verify_request(request, _secrets, **kwargs)


def _refusal(request: SignedRequest, **kwargs: Any) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        _verify(request, **kwargs)
    return caught.value


def _replace_header(
    request: SignedRequest, name: str, value: str | None
) -> SignedRequest:
    kept = [(key, old) for key, old in request.headers if key.lower() != name.lower()]
    added = [] if value is None else [(name, value)]
    return dataclasses.replace(request, headers=kept + added)


def test_public_surface_is_pinned() -> None:
    assert sorted(sigv4.__all__) == [
        "ALGORITHM",
        "Credential",
        "SignedRequest",
        "verify_request",
    ]


@pytest.mark.parametrize(
    "params",
    [
        [("FlowDefinitionArn", FLOW_ARN), ("MaxResults", "10")],
        [("SortOrder", "Ascending"), ("CreationTimeAfter", "2024-01-02T03:04:05Z")],
        [("NameContains", "loop with  spaces"), ("Plus", "a+b"), ("Tilde", "~x-y_z.")],
        [("Label", "naïve café ☕"), ("Ключ", "значение")],
        [("Tag", "b"), ("Tag", "a"), ("Tag", "")],
        [("Empty", ""), ("Equals", "a=b&c=d"), ("Percent", "100%")],
    ],
    ids=["arn", "timestamp", "spaces", "unicode", "repeated", "empty-and-reserved"],
)
def test_get_with_tricky_query_values_verifies(params: Params) -> None:
    request = _sign(
        "GET", f"{ENDPOINT}/a2i/human-loops", params=params, service="sagemaker"
    )

    credential = _verify(request)

    assert credential == Credential(ACCESS_KEY, "us-east-1", "sagemaker")


@pytest.mark.parametrize(
    "query",
    [
        "MaxResults=10&FlowDefinitionArn=arn%3Aaws%3Asagemaker%3Ax%2Fy&A=&A=b%20c",
        "FlowDefinitionArn=arn:aws:sagemaker:x/y&Name=a+b&flag",
    ],
    ids=["canonically-encoded", "loosely-encoded"],
)
def test_query_already_in_the_url_verifies(query: str) -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops?{query}")

    assert request.query_string == query
    assert _verify(request).access_key_id == ACCESS_KEY


def test_post_with_json_body_verifies() -> None:
    body = json.dumps(
        {"FlowDefinitionName": "fd-1", "HumanLoopConfig": {"TaskCount": 3}}
    ).encode()
    headers = {
        "X-Amz-Target": "SageMaker.CreateFlowDefinition",
        "Content-Type": "application/x-amz-json-1.1",
    }

    request = _sign("POST", f"{ENDPOINT}/sagemaker/", body=body, headers=headers)

    assert _verify(request).service == "sagemaker"


@pytest.mark.parametrize(
    "path",
    [
        "/a2i/human-loops/loop%20one",
        "/a2i/human-loops/a%2Fb%3Ac%25d",
        "/a2i/./human-loops//x/../loop-2",
        "/a2i/human-loops/%C3%A9t%C3%A9/",
    ],
    ids=["space", "reserved", "dot-segments", "unicode-trailing-slash"],
)
def test_delete_on_percent_encoded_path_verifies(path: str) -> None:
    request = _sign("DELETE", f"{ENDPOINT}{path}", service="sagemaker-a2i-runtime")

    assert request.raw_path == path
    assert _verify(request).service == "sagemaker-a2i-runtime"


def test_signed_header_values_are_compared_with_whitespace_folded() -> None:
    request = _sign(
        "GET",
        f"{ENDPOINT}/a2i/human-loops",
        headers={"X-Custom": "  two   spaced\twords  "},
    )
    # A server strips the value's edges but keeps the runs of whitespace inside.
    received = _replace_header(request, "X-Custom", "two   spaced\twords")

    assert _verify(received).access_key_id == ACCESS_KEY


def test_unsigned_extra_headers_are_ignored() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")
    proxied = dataclasses.replace(
        request, headers=[*request.headers, ("X-Forwarded-For", "10.0.0.1")]
    )

    assert _verify(proxied).access_key_id == ACCESS_KEY


def test_date_header_stands_in_for_x_amz_date() -> None:
    request = _sign(
        "GET", f"{ENDPOINT}/a2i/human-loops", headers={"Date": "placeholder"}
    )
    assert all(name.lower() != "x-amz-date" for name, _ in request.headers)

    signed_at = datetime.strptime(_header(request, "date"), "%a, %d %b %Y %H:%M:%S %z")

    assert _verify(request, now=signed_at).access_key_id == ACCESS_KEY


def _post() -> SignedRequest:
    body = b'{"FlowDefinitionArn": "' + FLOW_ARN.encode() + b'"}'
    return _sign(
        "POST",
        f"{ENDPOINT}/a2i/human-loops?Tag=a",
        body=body,
        headers={"X-Amz-Target": "SageMaker.DescribeFlowDefinition"},
    )


def _with_later_date(request: SignedRequest) -> SignedRequest:
    later = _signing_time(request) + timedelta(seconds=1)
    return _replace_header(request, "X-Amz-Date", later.strftime("%Y%m%dT%H%M%SZ"))


TAMPERINGS: dict[str, Callable[[SignedRequest], SignedRequest]] = {
    "body": lambda r: dataclasses.replace(r, body=r.body.replace(b"fd-1", b"fd-2")),
    "path": lambda r: dataclasses.replace(r, raw_path="/a2i/human-loop"),
    "query-value": lambda r: dataclasses.replace(r, query_string="Tag=b"),
    "query-added": lambda r: dataclasses.replace(r, query_string="Tag=a&MaxResults=1"),
    "method": lambda r: dataclasses.replace(r, method="PUT"),
    "signed-header": lambda r: _replace_header(
        r, "X-Amz-Target", "SageMaker.DeleteFlowDefinition"
    ),
    "host": lambda r: _replace_header(r, "Host", "127.0.0.1:9999"),
    "date": _with_later_date,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_request_is_refused(
    tamper: Callable[[SignedRequest], SignedRequest],
) -> None:
    request = _post()
    assert _verify(request).access_key_id == ACCESS_KEY

    error = _refusal(tamper(request))

    assert error.aws_code == "InvalidSignatureException"
    assert error.status == 403
    assert error.message.startswith(
        "The request signature we calculated does not match"
    )


def test_wrong_secret_is_refused_without_revealing_secret_or_signature() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops", secret="not-the-secret")

    error = _refusal(request)

    assert error.aws_code == "InvalidSignatureException"
    assert SECRET not in error.message
    assert re.search(r"[0-9a-f]{64}", error.message) is None


def test_unknown_access_key_is_unrecognized() -> None:
    request = _sign(
        "GET", f"{ENDPOINT}/a2i/human-loops", access_key="CLAKIDUNKNOWN0000000"
    )

    error = _refusal(request)

    assert error.aws_code == "UnrecognizedClientException"
    assert error.message == "The security token included in the request is invalid."


def test_secret_is_looked_up_once_per_request() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")
    asked: list[str] = []

    def lookup(access_key_id: str) -> str | None:
        asked.append(access_key_id)
        return SECRET

    verify_request(request, lookup, now=_signing_time(request))

    assert asked == [ACCESS_KEY]


def test_stale_signature_is_expired() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")

    error = _refusal(request, now=_signing_time(request) + timedelta(minutes=6))

    assert error.aws_code == "InvalidSignatureException"
    assert error.message.startswith("Signature expired: ")


def test_signature_from_the_future_is_refused() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")

    error = _refusal(request, now=_signing_time(request) - timedelta(minutes=6))

    assert error.aws_code == "InvalidSignatureException"
    assert error.message.startswith("Signature not yet current: ")


def test_skew_within_the_allowance_is_accepted() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")

    credential = _verify(
        request,
        now=_signing_time(request) + timedelta(minutes=9),
        max_skew=timedelta(minutes=10),
    )

    assert credential.access_key_id == ACCESS_KEY


def test_missing_authorization_header_is_missing_token() -> None:
    request = _replace_header(
        _sign("GET", f"{ENDPOINT}/a2i/human-loops"), "Authorization", None
    )

    error = _refusal(request)

    assert error.aws_code == "MissingAuthenticationTokenException"
    assert error.message == "Missing Authentication Token"


def test_missing_date_is_incomplete() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")
    unsigned = _rewrite_authorization(
        request, "SignedHeaders=host;x-amz-date", "SignedHeaders=host"
    )
    undated = _replace_header(unsigned, "X-Amz-Date", None)

    error = _refusal(undated, now=_signing_time(request))

    assert error.aws_code == "IncompleteSignatureException"
    assert "X-Amz-Date" in error.message


def test_credential_scope_date_must_match_signing_date() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")
    next_day = _signing_time(request) + timedelta(days=1)
    redated = _replace_header(
        request, "X-Amz-Date", next_day.strftime("%Y%m%dT%H%M%SZ")
    )

    error = _refusal(redated, now=next_day)

    assert error.aws_code == "InvalidSignatureException"
    assert "Credential scope date" in error.message


def _rewrite_authorization(request: SignedRequest, old: str, new: str) -> SignedRequest:
    authorization = _header(request, "authorization")
    assert old in authorization
    return _replace_header(request, "Authorization", authorization.replace(old, new))


def test_unsigned_host_is_incomplete() -> None:
    request = _sign("GET", f"{ENDPOINT}/a2i/human-loops")

    error = _refusal(
        _rewrite_authorization(request, "SignedHeaders=host;", "SignedHeaders=")
    )

    assert error.aws_code == "IncompleteSignatureException"
    assert "'host'" in error.message


def test_signed_header_absent_from_request_is_incomplete() -> None:
    request = _post()

    error = _refusal(_replace_header(request, "X-Amz-Target", None))

    assert error.aws_code == "IncompleteSignatureException"
    assert "'x-amz-target'" in error.message


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 ", "AWS4-HMAC-SHA512"),
        ("Credential=", "Cred=", "'Credential'"),
        (", Signature=", ", Sig=", "'Signature'"),
        ("/us-east-1/", "/", "Credential must be"),
        ("/aws4_request", "/aws5_request", "Credential must be"),
        ("Signature=", "Signature=zz", "Signature must be"),
        (", SignedHeaders", " SignedHeaders", "SignedHeaders"),
    ],
    ids=[
        "algorithm",
        "no-credential",
        "no-signature",
        "short-scope",
        "terminator",
        "signature-hex",
        "no-comma",
    ],
)
def test_malformed_authorization_header_is_incomplete(
    old: str, new: str, named: str
) -> None:
    request = _rewrite_authorization(
        _sign("GET", f"{ENDPOINT}/a2i/human-loops"), old, new
    )

    error = _refusal(request)

    assert error.aws_code == "IncompleteSignatureException"
    assert named in error.message


def test_payload_hash_header_must_match_the_body() -> None:
    body = b'{"a": 1}'
    signed = _sign(
        "POST",
        f"{ENDPOINT}/sagemaker/",
        body=body,
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )

    error = _refusal(signed)

    assert error.aws_code == "InvalidSignatureException"
    assert "X-Amz-Content-SHA256" in error.message


def test_payload_hash_header_matching_the_body_verifies() -> None:
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    signed = _sign(
        "POST",
        f"{ENDPOINT}/sagemaker/",
        body=body,
        headers={"X-Amz-Content-SHA256": digest},
    )

    assert _verify(signed).access_key_id == ACCESS_KEY


# A real boto3 client talking to a real local HTTP server: proves the bytes on
# the wire verify, not only botocore's in-memory request.


class _RecordingHandler(BaseHTTPRequestHandler):
    received: list[SignedRequest]
    replies: dict[str, bytes]

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        request = SignedRequest(
            self.command,
            path,
            query,
            list(self.headers.items()),
            self.rfile.read(length),
        )
        self.received.append(request)

        reply = self.replies[self.command]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[SignedRequest]]]:
    received: list[SignedRequest] = []
    replies = {
        "GET": b'{"HumanLoopSummaries": []}',
        "POST": json.dumps({"FlowDefinitionArn": FLOW_ARN}).encode(),
    }
    handler = type(
        "Handler", (_RecordingHandler,), {"received": received, "replies": replies}
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _client(service: str, endpoint_url: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_boto3_list_human_loops_verifies(
    server: tuple[str, list[SignedRequest]],
) -> None:
    base, received = server
    client = _client("sagemaker-a2i-runtime", f"{base}/a2i")

    client.list_human_loops(
        FlowDefinitionArn=FLOW_ARN,
        CreationTimeAfter=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        SortOrder="Ascending",
        MaxResults=10,
    )

    (request,) = received
    assert request.raw_path == "/a2i/human-loops"
    assert "FlowDefinitionArn=arn%3Aaws%3Asagemaker%3A" in request.query_string
    assert verify_request(request, _secrets) == Credential(
        ACCESS_KEY, "eu-west-1", "sagemaker"
    )


def test_boto3_create_flow_definition_verifies(
    server: tuple[str, list[SignedRequest]],
) -> None:
    base, received = server
    client = _client("sagemaker", f"{base}/sagemaker")

    client.create_flow_definition(
        FlowDefinitionName="fd-1",
        HumanLoopConfig={
            "WorkteamArn": "arn:aws:sagemaker:eu-west-1:111122223333:workteam/private-crowd/team",
            "HumanTaskUiArn": "arn:aws:sagemaker:eu-west-1:111122223333:human-task-ui/ui-1",
            "TaskTitle": "Check the label",
            "TaskDescription": "Is the label right? Ünïcode too.",
            "TaskCount": 1,
        },
        OutputConfig={"S3OutputPath": "s3://bucket/out/"},
        RoleArn="arn:aws:iam::111122223333:role/closedloop",
    )

    (request,) = received
    assert request.method == "POST"
    assert _header(request, "x-amz-target") == "SageMaker.CreateFlowDefinition"
    assert verify_request(request, _secrets) == Credential(
        ACCESS_KEY, "eu-west-1", "sagemaker"
    )

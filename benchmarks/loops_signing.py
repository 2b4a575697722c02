"""StartHumanLoop requests signed with SigV4 the way boto3 signs them."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit

from loops_harness import small_input


def signed_request(
    signer: Any, url: str, name: str, flow_arn: str
) -> tuple[bytes, dict[str, str]]:
    """A StartHumanLoop request signed as boto3 signs it; returns body and headers.

    The body is serialized like botocore's rest-json serializer, and the Host
    header (which the signature covers) is set to what is sent on the wire.
    """
    from botocore.awsrequest import AWSRequest

    body = json.dumps(start_request(name, flow_arn)).encode()
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "Host": urlsplit(url).netloc,
            "User-Agent": boto_user_agent(),
        },
    )
    signer.add_auth(request)
    headers = {
        k: v.decode() if isinstance(v, bytes) else str(v)
        for k, v in request.headers.items()
    }
    headers["Content-Length"] = str(len(body))
    return body, headers


@functools.cache
def boto_user_agent() -> str:
    """The product tokens of boto3's own User-Agent header."""
    import boto3
    import botocore

    return f"Boto3/{boto3.__version__} Botocore/{botocore.__version__}"


def make_signer(access_key_id: str, secret_access_key: str, region: str) -> Any:
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    return SigV4Auth(Credentials(access_key_id, secret_access_key), "sagemaker", region)


def start_request(name: str, flow_arn: str) -> dict[str, Any]:
    return {
        "HumanLoopName": name,
        "FlowDefinitionArn": flow_arn,
        "HumanLoopInput": {"InputContent": small_input(len(name))},
    }

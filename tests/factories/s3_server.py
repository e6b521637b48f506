"""An S3-compatible server on loopback (moto in server mode) and the environment GDAL reads it with."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.factories.processes import free_port

#: Dummy credentials and a region: moto accepts any, GDAL and boto3 need some.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def gdal_s3_env(endpoint: str) -> dict[str, str]:
    """The environment that points GDAL's ``/vsis3/`` at ``endpoint`` (``http://host:port``), path-style."""
    return {
        **S3_CREDENTIALS,
        "AWS_S3_ENDPOINT": endpoint.removeprefix("http://"),
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 on a free loopback port for the ``with`` body; yields its ``http://127.0.0.1:PORT``."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of ``endpoint`` with the dummy credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_REGION"],
    )


def put_files(endpoint: str, bucket: str, files: dict[str, Path]) -> None:
    """Create ``bucket`` (if new) and upload ``files`` (key -> local file) to it."""
    client = s3_client(endpoint)
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for key, path in files.items():
        client.upload_file(str(path), bucket, key)

"""A local S3 (``moto_server``) for the tests of what the pipeline keeps on s3://."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

KEY_ID, SECRET = "testing", "testing"  # moto accepts any credentials
# moto_server, one request at a time.  On S3 each request is atomic and what it wrote
# is read back by the next: the registry's conditional create (`If-None-Match: *`)
# relies on it.  moto's threaded server is not: its PUT checks for the key and then
# writes it, an overwrite disposes of the object a concurrent reader holds, and
# test_registry_s3.py's concurrent promotions once read a listed index generation as
# missing (one full `make test` in five).  Serving requests one at a time keeps
# clients concurrent, interleaved request by request as S3 interleaves them.
SERIAL_MOTO_SERVER = """
import sys, threading
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

lock, call = threading.Lock(), DomainDispatcherApplication.__call__

def one_at_a_time(self, environ, start_response):
    with lock:
        return call(self, environ, start_response)

DomainDispatcherApplication.__call__ = one_at_a_time
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server of this test session, stopped at its end."""
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto's server is not installed (dev dependency moto[server])")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERIAL_MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"moto_server did not start on port {port}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A new bucket on the local S3, and an s3fs filesystem that reaches it."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("TRAINING_PIPELINE_S3_ENDPOINT_URL", s3_endpoint)
    fs = s3fs.S3FileSystem(
        key=KEY_ID, secret=SECRET, endpoint_url=s3_endpoint, skip_instance_cache=True
    )
    bucket = f"tp-scale-lake-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    return bucket, fs

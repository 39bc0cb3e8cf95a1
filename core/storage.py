"""Stored files (import files, evidence) read through the `default` storage, whichever it is (settings § Object
storage): never by a local path, which a file in an object store does not have."""

from __future__ import annotations

from typing import IO, Any

from storages.backends.s3 import S3File


def open_stream(field_file: Any) -> tuple[IO[bytes], int]:
    """The stored file, to be read once from its start, and its size in bytes.

    Opening a file of an object store for reading copies it whole to a temporary file first (so that it can seek);
    a download needs no seeking, so it reads the object's body as it arrives instead. A local file is opened."""
    handle = field_file.storage.open(field_file.name, "rb")
    if not isinstance(handle, S3File):
        return handle, handle.size
    try:
        answer = handle.obj.get()
    finally:
        handle.close()  # it has read nothing yet: closing it drops no copy
    return answer["Body"], answer["ContentLength"]

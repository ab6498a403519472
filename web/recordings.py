"""Recorded meetings uploaded on the home page: upload, analysis in the background, progress.

``POST /api/recordings`` takes a multipart form (``file``, optional ``name``) and streams
the file to a private temporary file (``recordings.upload_dir``), refusing anything larger
than ``recordings.max_upload_mb`` with 413; the upload is then queued for analysis
(:class:`~bot.recordings.RecordingJobs`, one at a time, off the event loop where it
matters: decoding on the source's thread, inference in the pools) and the answer is 202
with the job's id. ``GET /api/recordings/{job_id}`` tells its progress and, once done,
the host link of the meeting it became (and makes the polling browser that meeting's
host: :func:`web.security.set_host_cookies`). The upload is deleted as soon as its
analysis ends, done or failed, and no route ever serves it.

An upload creates a meeting, so it needs what creating one needs (the admin token as a
Bearer header, the admin cookie or an ``admin_token`` field, or open creation); from a
browser it also needs the page's CSRF token, in the ``X-CSRF-Token`` header or a
``csrf_token`` field before the file. Both are checked before the file is read.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage

from bot.recordings import RecordingJob
from web.errors import api_error
from web.keys import RECORDINGS, SETTINGS
from web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    CreationRefused,
    check_creator,
    csrf_failed,
    csrf_valid,
    remember_admin,
    set_host_cookies,
)

#: Bytes read from the upload at a time.
CHUNK_BYTES = 1 << 20
#: Longest meeting name accepted with an upload.
NAME_MAX = 120
#: Room for the form's other fields and boundaries beyond the file itself, in bytes.
FORM_OVERHEAD_BYTES = 64 * 1024


def _too_large(limit: int, size: int) -> web.HTTPException:
    mb = limit / (1024 * 1024)
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=size,
        text=web.json_response(
            {
                "error": {
                    "code": "too_large",
                    "message": f"file: larger than the {mb:g} MB this server accepts",
                }
            }
        ).text,
        content_type="application/json",
    )


def _suffix(filename: str | None) -> str:
    """The upload's extension, if it is a plain one (ffmpeg also reads the content)."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


async def _save(part: BodyPartReader, limit: int, folder: Path | None) -> Path:
    """Stream one file part to a new private file; 413 (and nothing kept) beyond ``limit``."""
    try:
        fd, name = await asyncio.to_thread(_new_file, part.filename, folder)
    except OSError as e:
        raise _cannot_store() from e
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, size)
                await asyncio.to_thread(_write, f, chunk)
    except BaseException as e:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        if isinstance(e, OSError):  # a full disk: the server's trouble, not a bad request
            raise _cannot_store() from e
        raise
    if size == 0:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise api_error(web.HTTPBadRequest, "invalid_field", "file: the file is empty")
    return path


def _new_file(filename: str | None, folder: Path | None) -> tuple[int, str]:
    if folder is not None:
        # A configured folder that is not there yet (a fresh volume) is made, private.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix="meetmood-upload-", suffix=_suffix(filename), dir=folder)


def _cannot_store() -> web.HTTPException:
    error = api_error(
        web.HTTPServiceUnavailable,
        "storage_unavailable",
        "the server cannot store the upload right now; try again later",
    )
    error.headers["Retry-After"] = "60"
    return error


def _write(f: IO[bytes], chunk: bytes) -> None:
    f.write(chunk)


async def api_upload(request: web.Request) -> web.Response:
    """Take an uploaded recording and queue it for analysis (202 with the job)."""
    settings = request.app[SETTINGS].recordings
    limit = int(settings.max_upload_mb * 1024 * 1024)
    declared = request.content_length
    if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit, declared)
    # A Bearer header cannot come from another site's form: no CSRF token needed then.
    csrf_ok = request.headers.get(hdrs.AUTHORIZATION, "").startswith("Bearer ")
    if not csrf_ok and (header := request.headers.get(CSRF_HEADER)) is not None:
        if not csrf_valid(request, header):
            raise csrf_failed()
        csrf_ok = True
    if not request.content_type.startswith("multipart/"):
        raise api_error(web.HTTPBadRequest, "invalid_body", "send the file as multipart/form-data")
    try:
        reader = await request.multipart()
    except ValueError as e:  # no boundary in the Content-Type
        raise _malformed() from e
    name = ""
    admin_token: str | None = None
    admin_cookie: str | None = None
    path: Path | None = None
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "name":
                name = (await _field(part, NAME_MAX * 4)).strip()[:NAME_MAX]
            elif part.name == CSRF_FIELD and not csrf_ok:
                if not csrf_valid(request, await _field(part, 256)):
                    raise csrf_failed()
                csrf_ok = True
            elif part.name == "admin_token":
                admin_token = await _field(part, 256)
            elif part.name == "file" and path is None:
                if not csrf_ok:
                    raise csrf_failed()
                try:
                    admin_cookie = await check_creator(request, admin_token)
                except CreationRefused as e:
                    raise e.api_error() from e
                path = await _save(part, limit, settings.upload_path)
            else:
                await part.release()
    except BaseException:
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    if path is None:
        raise api_error(web.HTTPBadRequest, "invalid_field", "file: missing")
    job = request.app[RECORDINGS].submit(path, name)
    response = web.json_response(
        {"job_id": job.id, "status_url": f"/api/recordings/{job.id}"}, status=202
    )
    remember_admin(request, response, admin_cookie)
    return response


def _malformed() -> web.HTTPException:
    return api_error(web.HTTPBadRequest, "invalid_body", "the multipart form is malformed")


async def _next_part(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    """The form's next part; 400 for a body that is not the multipart form it claims."""
    try:
        return await reader.next()
    except (ValueError, BadHttpMessage) as e:  # a bad boundary, a part's bad header
        raise _malformed() from e


async def _field(part: BodyPartReader, max_bytes: int) -> str:
    """A small text field of the form (at most ``max_bytes`` are read)."""
    raw = await part.read_chunk(max_bytes)
    return raw.decode("utf-8", "replace")


def job_json(request: web.Request, job: RecordingJob) -> dict[str, Any]:
    """What the uploader's page is told about its job."""
    p = job.progress
    body: dict[str, Any] = {
        "job_id": job.id,
        "state": job.state,
        "done_secs": None if p is None else round(p.done_secs, 1),
        "duration_secs": None if p is None else round(p.duration_secs, 1),
        "speed": None if p is None or p.speed is None else round(p.speed, 2),
        "eta_secs": None if p is None or p.eta_secs is None else round(p.eta_secs, 1),
        "error": job.error,
    }
    result = job.result
    if result is not None:
        record_id = result.meeting_id
        base = request.app[SETTINGS].server.public_url or f"{request.scheme}://{request.host}"
        body |= {
            "meeting_id": record_id,
            # The one hand-over of the host token, as with POST /api/meetings; the report
            # link works with the host cookie that api_job sets.
            "host_url": f"{base}/host/{record_id}?token={result.host_token}",
            "report_url": f"{base}/api/meetings/{record_id}/report",
            "speed": round(result.speed, 2),
            "participants": result.participants,
        }
    return body


async def api_job(request: web.Request) -> web.Response:
    """An uploaded recording's analysis: state, progress, ETA and, when done, its meeting."""
    job = request.app[RECORDINGS].jobs.get(request.match_info["job_id"])
    if job is None:
        raise api_error(web.HTTPNotFound, "job_not_found", "no upload has this id")
    response = web.json_response(job_json(request, job))
    if (result := job.result) is not None:
        # Whoever holds the job id uploaded the recording: they are the new meeting's host.
        set_host_cookies(request, response, result.meeting_id, result.host_token)
    return response

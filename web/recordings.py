"""Recorded meetings uploaded on the home page: upload, analysis in the background, progress.

``POST /api/recordings`` takes a multipart form (``file``, optional ``name``) and streams
the file to a private temporary file (``recordings.upload_dir``), refusing anything larger
than ``recordings.max_upload_mb`` with 413; the upload is then queued for analysis
(:class:`~bot.recordings.RecordingJobs`, one at a time, off the event loop where it
matters: decoding on the source's thread, inference in the pools) and the answer is 202
with the job's id. ``GET /api/recordings/{job_id}`` tells its progress and, once done,
the host link of the meeting it became. The upload is deleted as soon as its analysis
ends, done or failed, and no route ever serves it.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any

from aiohttp import BodyPartReader, web

from bot.recordings import RecordingJob
from web.errors import api_error
from web.keys import RECORDINGS, SETTINGS

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
    fd, name = tempfile.mkstemp(
        prefix="meetmood-upload-", suffix=_suffix(part.filename), dir=folder
    )
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, size)
                await asyncio.to_thread(_write, f, chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    if size == 0:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise api_error(web.HTTPBadRequest, "invalid_field", "file: the file is empty")
    return path


def _write(f: IO[bytes], chunk: bytes) -> None:
    f.write(chunk)


async def api_upload(request: web.Request) -> web.Response:
    """Take an uploaded recording and queue it for analysis (202 with the job)."""
    settings = request.app[SETTINGS].recordings
    limit = int(settings.max_upload_mb * 1024 * 1024)
    declared = request.content_length
    if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit, declared)
    if not request.content_type.startswith("multipart/"):
        raise api_error(web.HTTPBadRequest, "invalid_body", "send the file as multipart/form-data")
    reader = await request.multipart()
    name = ""
    path: Path | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "name":
                raw = await part.read_chunk(NAME_MAX * 4)
                name = raw.decode("utf-8", "replace").strip()[:NAME_MAX]
            elif part.name == "file" and path is None:
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
    return web.json_response(
        {"job_id": job.id, "status_url": f"/api/recordings/{job.id}"}, status=202
    )


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
            "host_url": f"{base}/host/{record_id}?token={result.host_token}",
            "report_url": f"{base}/api/meetings/{record_id}/report?token={result.host_token}",
            "speed": round(result.speed, 2),
            "participants": result.participants,
        }
    return body


async def api_job(request: web.Request) -> web.Response:
    """An uploaded recording's analysis: state, progress, ETA and, when done, its meeting."""
    job = request.app[RECORDINGS].jobs.get(request.match_info["job_id"])
    if job is None:
        raise api_error(web.HTTPNotFound, "job_not_found", "no upload has this id")
    return web.json_response(job_json(request, job))

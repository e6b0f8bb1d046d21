"""A contacts CSV import over HTTP, for the console (issue 16; CONTRACT.md, "Contacts").

``POST /api/v1/contacts/import`` takes the file (the body as ``text/csv``, or the ``file``
field of a ``multipart/form-data`` form), answers 202 with the job and its id, and
imports in the background (:mod:`services.campaigns.import_jobs`).
``GET /api/v1/contacts/import/{job_id}`` says how far it is; once done,
``GET /api/v1/contacts/import/{job_id}/rejected.csv`` is every rejected row: its line
and the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from services.auth import Authorized
from services.bootstrap import AppDep
from services.campaigns.import_jobs import UPLOAD, Busy, ImportJob, ImportJobs
from services.errors import UsageError
from services.json_bodies import JSONBodyRoute
from services.spreadsheet import csv_text

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])
CHUNK = 1 << 16
#: The body, as the OpenAPI document shows it (the route reads it as a stream itself).
CSV_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}
CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "line, reason"}
}


def jobs_of(request: Request) -> ImportJobs:
    """The API process's imports (one registry per app, made on first use)."""
    state = request.app.state
    if getattr(state, "import_jobs", None) is None:
        state.import_jobs = ImportJobs()
    jobs: ImportJobs = state.import_jobs
    return jobs


@router.post("/api/v1/contacts/import", status_code=202, openapi_extra={"requestBody": CSV_BODY})
async def post_import(request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Starts importing the CSV (the columns of ``winwin contacts import``); 422 when it
    has no ``external_id`` header, 429 while two imports are running."""
    jobs = jobs_of(request)
    folder = jobs.folder()
    upload = folder / UPLOAD
    try:
        await _receive(request, upload)
        job = await run_in_threadpool(jobs.start, c, upload, request.state.actor.id)
    except UsageError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(422, str(exc)) from None
    except Busy as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(429, str(exc)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job.as_json()


async def _receive(request: Request, upload: Path) -> None:
    """The uploaded file, streamed to ``upload`` (the body limit holds its size)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    with upload.open("wb") as out:
        if media != "multipart/form-data":
            async for chunk in request.stream():
                out.write(chunk)
            return
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise UsageError("send the CSV as the form's 'file' field")
        while chunk := await file.read(CHUNK):
            out.write(chunk)


def _job(request: Request, job_id: str) -> ImportJob:
    job = jobs_of(request).get(job_id)
    if job is None:
        raise HTTPException(404, "no such import (imports are kept until the API restarts)")
    return job


@router.get("/api/v1/contacts/import/{job_id}")
def get_import(job_id: str, request: Request, _: Authorized) -> dict[str, Any]:
    """How far the import is: rows read of the total; once done, the counts."""
    return _job(request, job_id).as_json()


@router.get(
    "/api/v1/contacts/import/{job_id}/rejected.csv",
    response_class=Response,
    responses=CSV_ANSWER,
)
def get_rejected(job_id: str, request: Request, _: Authorized) -> Response:
    """Every rejected row (line, reason) as CSV; 409 while the import runs."""
    job = _job(request, job_id)
    if job.state == "running":
        raise HTTPException(409, "the import is still running")
    headers = {"Content-Disposition": 'attachment; filename="rejected-rows.csv"'}
    if not job.report.is_file():
        return Response(csv_text(["line", "reason"], []), media_type="text/csv", headers=headers)
    return FileResponse(job.report, media_type="text/csv", headers=headers)

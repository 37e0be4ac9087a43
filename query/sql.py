"""``/api/sql``: one read-only SQL query over the spans, answered as JSON, CSV, Arrow or Parquet.

``POST /api/sql`` takes ``{"query": "...", "max_rows": n, "format": "..."}`` (or the query as a
text/plain body); ``GET /api/sql?q=...&max_rows=n&format=...`` does the same. The format comes
from ``format`` if given, else from the ``Accept`` header, else JSON.

Status codes: 200 with the result; 400 ``{"error": ...}`` for a query DuckDB or the safety rules
refuse, and for a query interrupted at the time limit (also ``"timeout": true``): 408 is avoided
because browsers and proxies may resend a request on 408, which would run the heavy query again;
503 with ``Retry-After`` when ``max_concurrent`` queries are already running. A query never runs on
the event loop: GET is a plain ``def`` (FastAPI's thread pool), POST hands it to a worker thread.
"""

from __future__ import annotations

import json

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from spanlake.query.errors import ApiError, BadRequest, guarded_routes
from spanlake.query.formats import sql as fmt
from spanlake.storage.sql import SqlEngine, SqlResult

_ACCEPT = {
    "text/csv": "csv",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/json": "json",
}


def router(engine: SqlEngine) -> APIRouter:
    api = APIRouter(route_class=guarded_routes(error_response))

    # Parameters arrive as text and are checked here, so that a bad one gets the API's own 400
    # {"error"} rather than FastAPI's 422 shape.
    @api.get("/api/sql")
    def sql_get(request: Request, q: str = "", max_rows: str | None = None,
                format: str | None = None) -> Response:
        return _answer(engine, request, q, parse_max_rows(max_rows), format)

    @api.post("/api/sql")
    async def sql_post(request: Request, max_rows: str | None = None,
                       format: str | None = None) -> Response:
        # async only to read the raw body; the query itself runs in a worker thread.
        body = await request.body()
        query, body_max_rows, body_format = parse_body(body, request.headers.get("content-type", ""))
        rows = body_max_rows if body_max_rows is not None else parse_max_rows(max_rows)
        return await anyio.to_thread.run_sync(_answer, engine, request, query, rows, body_format or format)

    return api


def parse_max_rows(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"max_rows must be an integer, got {raw!r}") from None


def parse_body(body: bytes, content_type: str) -> tuple[str, int | None, str | None]:
    """(query, max_rows, format) from a JSON object or a plain-text body."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return "", None, None
    if "json" not in content_type.lower() and not text.lstrip().startswith("{"):
        return text, None, None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
        raise BadRequest('send {"query": "SELECT ..."} (a JSON object with a string "query")')
    max_rows = doc.get("max_rows")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int)):
        raise BadRequest('"max_rows" must be an integer')
    out_format = doc.get("format")
    if out_format is not None and not isinstance(out_format, str):
        raise BadRequest('"format" must be a string')
    return doc["query"], max_rows, out_format


def choose_format(requested: str | None, accept: str) -> str:
    if requested:
        if requested not in fmt.FORMATS:
            raise BadRequest(f"unknown format {requested!r}; choose from {', '.join(fmt.FORMATS)}")
        return requested
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPT:
            return _ACCEPT[media]
    return "json"


def _answer(engine: SqlEngine, request: Request, query: str, max_rows: int | None,
            requested_format: str | None) -> Response:
    out_format = choose_format(requested_format, request.headers.get("accept", ""))
    if not query.strip():
        raise BadRequest("no query: send q=SELECT... or a body with the query")
    return _result(engine.execute(query, max_rows), out_format)


def _result(result: SqlResult, out_format: str) -> Response:
    if out_format == "json":
        return JSONResponse({"columns": result.columns, "rows": fmt.rows_json(result.table),
                             "truncated": result.truncated, "elapsed_ms": round(result.elapsed_ms, 3)})
    headers = {"X-Spanlake-Truncated": "true" if result.truncated else "false",
               "X-Spanlake-Elapsed-Ms": f"{result.elapsed_ms:.3f}",
               "X-Spanlake-Rows": str(result.table.num_rows)}
    if out_format in ("csv", "parquet"):
        headers["Content-Disposition"] = f'attachment; filename="spans.{out_format}"'
    return Response(fmt.encode(result.table, out_format), media_type=fmt.MEDIA_TYPES[out_format],
                    headers=headers)


def error_response(error: ApiError) -> JSONResponse:
    """The SQL API's error shape: ``{"error": message}``, and ``"timeout": true`` for an interrupted query."""
    return JSONResponse({"error": error.message, **error.extra}, status_code=error.status,
                        headers=error.headers)

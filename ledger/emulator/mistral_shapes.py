"""The emulator's stored files and batches in Mistral's shapes (mistralai 3.7.0:
`client/models/batchjob.py`, `batchjobstatus.py`, `createfileresponse.py`, `fileschema.py`)."""

from __future__ import annotations

from typing import Any

#: The store's (OpenAI's) batch status -> Mistral's job status.
JOB_STATUS = {
    "validating": "QUEUED",
    "in_progress": "RUNNING",
    "finalizing": "RUNNING",
    "cancelling": "CANCELLATION_REQUESTED",
    "completed": "SUCCESS",
    "failed": "FAILED",
    "expired": "TIMEOUT_EXCEEDED",
    "cancelled": "CANCELLED",
}


def present_file(file: dict[str, Any], *, num_lines: int | None = None) -> dict[str, Any]:
    """An OpenAI FileObject JSON as Mistral's file JSON."""
    output = file.get("purpose") == "batch_output"
    kind = "batch_request"
    if output:
        kind = "batch_error" if str(file.get("filename", "")).endswith("_error.jsonl") else ""
        kind = kind or "batch_result"
    return {
        "id": file["id"],
        "object": "file",
        "bytes": file["bytes"],
        "created_at": file["created_at"],
        "filename": file["filename"],
        "purpose": "batch",
        "sample_type": kind,
        "source": "mistral" if output else "upload",
        "num_lines": num_lines,
        "mimetype": "application/jsonl",
    }


def present_job(batch: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Batch JSON (of host `mistral`) as Mistral's batch job JSON."""
    counts = batch.get("request_counts") or {}
    succeeded, failed = counts.get("completed", 0), counts.get("failed", 0)
    errors = (batch.get("errors") or {}).get("data") or []
    ended = next(
        (
            batch.get(f"{word}_at")
            for word in ("completed", "failed", "expired", "cancelled")
            if batch.get(f"{word}_at")
        ),
        None,
    )
    return {
        "id": batch["id"],
        "object": "batch",
        "input_files": [batch["input_file_id"]],
        "metadata": batch.get("metadata"),
        "endpoint": batch["endpoint"],
        "model": batch.get("model"),
        "output_file": batch.get("output_file_id"),
        "error_file": batch.get("error_file_id"),
        "errors": [{"message": f"{e.get('code')}: {e.get('message')}", "count": 1} for e in errors],
        "status": JOB_STATUS.get(batch["status"], batch["status"].upper()),
        "created_at": batch["created_at"],
        "total_requests": counts.get("total", 0),
        "completed_requests": succeeded + failed,
        "succeeded_requests": succeeded,
        "failed_requests": failed,
        "started_at": batch.get("in_progress_at"),
        "completed_at": ended,
    }

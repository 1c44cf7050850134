"""The auditor over HTTP: a case's history and its state at any moment (from the event log,
never from the read models), the re-runs of a decision and of a lottery round, who read whose
data, and the signed checkpoints of the hash chain with the key that verifies them.

The transparency log is open to anyone, without a token (it holds hashes and signatures only):
the latest checkpoint as a C2SP signed note, inclusion and consistency proofs (RFC 9162), and
the witnesses' cosignatures, received and served back."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi import Path as Path_
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Auditor, Reads, Use, container
from api.http.models import MAX_ID, SettlementPath
from api.http.problems import problem
from api.http.routers.housing import RoundPath
from application.reports import AuditReport, combined
from infra import access_log
from infra.audit_trail import ProofUnavailable
from infra.bootstrap import PROJECTIONS
from infra.case_report import render_html
from infra.config import ConfigurationError

router = APIRouter(tags=["audit"], route_class=Utf8JsonRoute)
REPORT_POLICY = {
    # the case report holds personal data: its own style and nothing else, no script at all
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}


@router.get("/api/v1/audit/households/{household_id}/history")
def case_history(
    household_id: UUID,
    actor: Auditor,
    use: Use,
    reads: Reads,
    format: Literal["json", "html"] = "json",
    lang: Literal["en", "az"] = "en",
) -> Any:
    """Every event of the case, from the event store, with actor, role, time, reason and
    causation, and each decision explained. ``?format=html`` gives a readable report (in
    Azerbaijani with ``lang=az``)."""
    history = use.audit.history(household_id)
    reads.record(
        "read case history", [household_id, *{UUID(e["aggregate_id"]) for e in history["events"]}]
    )
    if format == "html":
        return HTMLResponse(render_html(history, None, actor.user_id, lang), headers=REPORT_POLICY)
    # Plain JSON values already: rendered as they are (the framework's generic encoder walked
    # every value of every event again first: most of the request's time).
    return JSONResponse(history)


@router.get("/api/v1/audit/households/{household_id}")
def case_as_of(
    household_id: UUID, _: Auditor, use: Use, reads: Reads, as_of: datetime | None = None
) -> dict[str, Any]:
    """The case as it stood at ``as_of`` (ISO 8601; UTC when no offset is given), replayed
    from the event store, not read from today's read models."""
    moment = as_of or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    state = use.audit.as_of(household_id, moment)
    reads.record(
        "read case as of", [household_id, *(UUID(m["person_id"]) for m in state["members"])]
    )
    return state


@router.get("/api/v1/audit/decisions/{decision_id}/rerun")
def rerun(decision_id: UUID, _: Auditor, use: Use, reads: Reads) -> dict[str, Any]:
    """Re-run a recorded decision on its recorded facts and rule set version."""
    result = use.audit.rerun_decision(decision_id)
    reads.record("re-run eligibility decision", [result.household_id])
    return result.as_dict()


@router.get("/api/v1/audit/settlements/{code}/rounds/{number}/rerun")
def rerun_lottery(
    code: SettlementPath, number: RoundPath, _: Auditor, use: Use, reads: Reads
) -> dict[str, Any]:
    """Re-run a drawn round from its recorded seed, entrants and units."""
    found = use.audit.rerun_lottery(code, number).as_dict()
    entrants = [e.household_id for e in use.housing.get_round(code, number).entrants]
    reads.record("re-run lottery round", entrants)
    return found


@router.get("/api/v1/audit/access-log")
def read_access_log(
    request: Request,
    actor: Auditor,
    actor_id: Annotated[
        str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
    ] = None,
    subject_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Who read whose personal data, when and why. Page with ``after_id``. National auditors
    only: the log names people of every district."""
    if not actor.national:
        raise HTTPException(403, "the access log is read by national auditors and supervisors")
    entries = access_log.query(
        container(request).read_pool,
        actor_id=actor_id,
        subject_id=subject_id,
        since=since,
        until=until,
        limit=limit,
        after_id=after_id,
    )
    return {"entries": entries, "next_after_id": entries[-1]["id"] if entries else None}


def _envelope(report: AuditReport) -> Any:
    """The audit envelope exactly as ``reintegration audit ... --json`` prints it."""
    return json.loads(report.to_json())


_verifying = threading.Lock()  # a verification reads the whole log: one at a time


@router.get(
    "/api/v1/audit/verification",
    responses={409: {"description": "A verification is already running in this process"}},
)
def chain_verification(request: Request, actor: Auditor) -> Any:
    """The chain verified as ``reintegration audit verify`` verifies it: recomputed from the
    event store and compared with the stored links, the signed checkpoints (database and
    Kafka), the witnesses' cosignatures and the links the Kafka messages carry. Answers the
    audit envelope (outcome ``ok`` or ``failed``, the first broken position among the
    findings), as the command's ``--json`` does; a failed verification is still a 200, and so
    is a service with no key to verify its checkpoints with: nothing vouches for its log."""
    trail = container(request).audit_trail
    if not _verifying.acquire(blocking=False):
        raise HTTPException(
            409, "a verification of the chain is already running here; ask again when it ends"
        )
    try:
        report = trail.verify(actor.user_id)
    except ConfigurationError as exc:
        report = AuditReport("chain verification", trail.events_table, actor.user_id)
        report.fail(position=None, problem=str(exc))
    finally:
        _verifying.release()
    return _envelope(report)


PROJECTION_NAMES = tuple(PROJECTIONS)
ProjectionQuery = Annotated[
    Literal[PROJECTION_NAMES] | None,  # type: ignore[valid-type]
    Query(description="Only this projection (default: every one)"),
]
_cross_checking = threading.Lock()  # the scratch schemas are named per projection


@router.get(
    "/api/v1/audit/projections",
    responses={
        409: {"description": "A cross-check is already running in this process"},
        503: {"description": "The database role may not create the scratch schemas"},
    },
)
def projections_cross_check(
    request: Request,
    actor: Auditor,
    projection: ProjectionQuery = None,
) -> Any:
    """The read models checked against the log, as ``reintegration audit projections``: each
    rebuilt from the start of the event log into scratch tables and compared row by row with
    the live one. Answers the audit envelope. National auditors and supervisors only: a
    difference is shown with sample rows, which may name anyone."""
    import psycopg

    if not actor.national:
        raise HTTPException(403, "the cross-check is run by national auditors and supervisors")
    if not _cross_checking.acquire(blocking=False):
        return problem(
            409,
            "Already running",
            "a cross-check is running: ask again when it has finished",
            kind="conflict",
            instance=request.url.path,
        )
    try:
        admin = container(request).projections
        names = [projection] if projection else list(PROJECTIONS)
        reports = [admin.cross_check(name, actor.user_id) for name in names]
    except psycopg.errors.InsufficientPrivilege:
        return problem(
            503,
            "Cannot cross-check",
            "the cross-check creates scratch schemas, which this database role may not: run "
            "`reintegration audit projections` with the owner's DATABASE_URL",
            kind="not-configured",
            instance=request.url.path,
        )
    finally:
        _cross_checking.release()
    return _envelope(combined("projection cross-check", "every read model", actor.user_id, reports))


@router.get("/api/v1/audit/public-key")
def audit_public_key(request: Request) -> dict[str, Any]:
    """The Ed25519 public keys that verify the signed checkpoints (several while keys are
    rotated, each with when it may have signed), and the one that signs now."""
    from infra.signed_note import ED25519, VerifierKey
    from infra.tamper_evidence import key_id, public_key_bytes  # loads the cryptography package

    trail = container(request).audit_trail
    keys = [
        {
            "key_id": key.key_id,
            "public_key": base64.b64encode(key.public).decode(),
            "valid_from": key.valid_from.isoformat() if key.valid_from else None,
            "valid_until": key.valid_until.isoformat() if key.valid_until else None,
        }
        for key in trail.public_keys()
    ]
    body: dict[str, Any] = {
        "algorithm": "Ed25519",
        "keys": keys,
        "origin": trail.settings.audit_log_origin,
        "vkeys": trail.log_vkeys(),
        "witnesses": list(trail.settings.audit_witnesses),
        "witness_quorum": trail.settings.audit_witness_quorum,
    }
    signing = trail.signing_key()
    if signing is not None:
        public = public_key_bytes(signing)
        body |= {
            "public_key": base64.b64encode(public).decode(),
            "key_id": key_id(public),
            "vkey": str(VerifierKey(trail.settings.audit_log_origin, ED25519, public)),
        }
    return body


@router.get("/api/v1/audit/checkpoints")
def audit_checkpoints(request: Request, _: Auditor) -> dict[str, Any]:
    """The signed checkpoints of the hash chain, oldest first."""
    checkpoints = container(request).audit_trail.stored_checkpoints()
    return {"checkpoints": [c.to_json() for c in checkpoints]}


NOTE = "text/plain; charset=utf-8"
TreeSize = Annotated[int, Query(ge=1, le=MAX_ID, description="a tree size (number of leaves)")]


def _unavailable(request: Request, exc: ProofUnavailable) -> Response:
    titles = {400: "Invalid request", 404: "Not found", 409: "Not in that tree"}
    return problem(
        exc.status,
        titles.get(exc.status, "Unavailable"),
        exc.reason,
        kind="transparency-log",
        instance=request.url.path,
    )


@router.get(
    "/api/v1/audit/checkpoints/latest",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {NOTE: {}}, "description": "a C2SP tlog-checkpoint note"},
        404: {"description": "No checkpoint has been signed (of that size)"},
    },
)
def latest_checkpoint(request: Request) -> Response:
    """The newest signed checkpoint, as a C2SP ``tlog-checkpoint`` note (origin, tree size,
    root hash; the log's signature and the witnesses' cosignatures). No token needed."""
    return _note(request, None)


@router.get(
    "/api/v1/audit/checkpoints/{tree_size}",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {NOTE: {}}, "description": "a C2SP tlog-checkpoint note"},
        404: {"description": "No checkpoint has been signed (of that size)"},
    },
)
def checkpoint_of_size(
    request: Request, tree_size: Annotated[int, Path_(ge=1, le=MAX_ID)]
) -> Response:
    """The signed checkpoint of that tree size, with its cosignatures. No token needed."""
    return _note(request, tree_size)


def _note(request: Request, tree_size: int | None) -> Response:
    note = container(request).audit_trail.checkpoint_note(tree_size)
    if note is None:
        which = "no checkpoint" if tree_size is None else f"no checkpoint of tree size {tree_size}"
        return problem(
            404,
            "Not found",
            f"{which} has been signed",
            kind="not-found",
            instance=request.url.path,
        )
    return PlainTextResponse(note, media_type=NOTE)


@router.post(
    "/api/v1/audit/checkpoints/cosignatures",
    responses={
        200: {"description": "the witnesses whose cosignatures were kept"},
        403: {"description": "No cosignature by a witness this log is configured with"},
        404: {"description": "This log signed no checkpoint of that tree size"},
        409: {"description": "The note differs from this log's checkpoint of that size"},
        422: {"description": "A cosignature by a configured witness does not verify"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {NOTE: {"schema": {"type": "string"}}}}
    },
)
async def receive_cosignature(request: Request) -> Any:
    """A witness sends back a checkpoint it cosigned (the note with its C2SP
    ``tlog-cosignature`` line). Kept, served with the checkpoint and published to Kafka when
    it verifies with a configured witness's key (AUDIT_WITNESSES). No token: the signature is
    the credential."""
    from infra.tamper_evidence import CosignatureRefused

    raw = await request.body()
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        return problem(
            400,
            "Malformed request",
            "the note is not UTF-8",
            kind="malformed",
            instance=request.url.path,
            field="body",
            reason="not UTF-8",
        )
    trail = container(request).audit_trail
    try:
        kept = await run_in_threadpool(trail.receive_cosignature, note)
    except CosignatureRefused as exc:
        titles = {
            400: "Malformed request",
            403: "Unknown witness",
            404: "Not found",
            409: "Not this log's checkpoint",
            422: "Invalid cosignature",
        }
        return problem(
            exc.status,
            titles[exc.status],
            exc.reason,
            kind="cosignature",
            instance=request.url.path,
            field="body",
            reason=exc.reason,
        )
    return {"kept": kept}


@router.get(
    "/api/v1/audit/proofs/inclusion/{position}",
    responses={
        404: {"description": "No checkpoint yet, or no event at that position in the tree yet"},
        409: {"description": "The event joined the tree after that tree size"},
    },
)
def inclusion_proof(
    request: Request,
    position: Annotated[int, Path_(ge=1, le=MAX_ID, description="the event's notification id")],
    tree_size: TreeSize | None = None,
) -> Any:
    """That the event at ``position`` is in the tree of ``tree_size`` leaves (default: the
    newest checkpoint's): its chain link (the leaf), leaf index and the RFC 9162 audit path,
    with the checkpoint note to check it against (``tools/verify_transparency.py``)."""
    try:
        proof = container(request).audit_trail.inclusion(position, tree_size)
    except ProofUnavailable as exc:
        return _unavailable(request, exc)
    return {
        "position": position,
        "leaf_index": proof.leaf.index,
        "chain_link": proof.leaf.chain_link.hex(),
        "tree_size": proof.tree_size,
        "hashes": [base64.b64encode(h).decode() for h in proof.hashes],
        "checkpoint": proof.checkpoint,
    }


@router.get(
    "/api/v1/audit/proofs/consistency",
    responses={
        400: {"description": "`from` is larger than `to`"},
        404: {"description": "The tree has not grown to `to` leaves yet"},
    },
)
def consistency_proof(
    request: Request,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_ID, description="older tree size")],
    to: TreeSize,
) -> Any:
    """That the tree of ``to`` leaves extends the one of ``from`` (RFC 9162 consistency
    proof), for a witness or anyone holding an older checkpoint."""
    try:
        hashes = container(request).audit_trail.consistency(from_, to)
    except ProofUnavailable as exc:
        return _unavailable(request, exc)
    return {"from": from_, "to": to, "hashes": [base64.b64encode(h).decode() for h in hashes]}

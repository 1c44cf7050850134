"""The console's audit pages (auditors and supervisors): the chain's verification, the signed
checkpoints and their cosignatures, an inclusion proof checked as the standalone verifier
checks it, the projections' cross-check, the read log (auditors) and the dead letters with
their replay (supervisors). Every check is the API's own (``/api/v1/audit/...``,
``/api/v1/operations/dead-letters``); only the inclusion proof's verdict is computed here, by
the pure functions of :mod:`infra.merkle` and :mod:`infra.signed_note`, from what the API
answered: the auditor need not trust the service's word that its own proof verifies."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Query
from starlette.responses import Response

from api.console.client import Answer
from api.console.web import Page, PageProblem, SignInRequired, roles
from infra import merkle
from infra.signed_note import ED25519, CheckpointBody, Note, NoteError, VerifierKey, signed_by

router = APIRouter(include_in_schema=False)

AuditPage = Annotated[Page, roles("auditor", "supervisor")]
AuditorPage = Annotated[Page, roles("auditor")]
SupervisorPage = Annotated[Page, roles("supervisor")]
PAGE_SIZE = 50


def N_(message: str) -> str:
    """A message to translate where it is shown (extracted by the catalog's test)."""
    return message


SUMMARY = {
    "events": N_("Events checked"),
    "head position": N_("Newest position"),
    "positions skipped (rolled back, not deleted)": N_(
        "Positions skipped (rolled back, not deleted)"
    ),
    "checkpoints verified": N_("Checkpoints verified"),
    "checkpoints in Kafka": N_("Checkpoints in Kafka"),
    "links compared with Kafka": N_("Links compared with Kafka"),
    "first broken position": N_("First broken position"),
    "public key ids": N_("Public keys used"),
    "newest checkpoint age (s)": N_("Age of the newest checkpoint (seconds)"),
    "tree size (events in the Merkle tree)": N_("Events in the Merkle tree"),
    "newest checkpoint tree size": N_("Tree size of the newest checkpoint"),
    "witnessed tree size": N_("Tree size the witnesses cosigned"),
    "checkpoints timestamped (RFC 3161)": N_("Checkpoints with a timestamp (RFC 3161)"),
    "newest timestamp (RFC 3161)": N_("Newest timestamp (RFC 3161)"),
    "snapshots checked": N_("Snapshots recomputed from their events"),
    "tables compared": N_("Tables compared"),
    "live lag": N_("Events the live projection has not applied yet"),
}
"""The envelope's summary lines, in words; a line not named here is shown as it is."""

VALUES = {
    "not checked": N_("not checked"),
    "no witnesses configured": N_("no witnesses configured"),
}
PROJECTIONS = {
    "households": N_("Households and persons"),
    "eligibility": N_("Eligibility decisions"),
    "housing": N_("Housing, lottery and relocation"),
}
ACTIONS = {
    "list convoys": N_("list convoys"),
    "list housing units": N_("list housing units"),
    "list returnees": N_("list returnees"),
    "re-run eligibility decision": N_("re-run eligibility decision"),
    "re-run lottery round": N_("re-run lottery round"),
    "read access report": N_("read access report"),
    "read case as of": N_("read case as of"),
    "read case history": N_("read case history"),
    "read case timeline": N_("read case timeline"),
    "read eligibility decision": N_("read eligibility decision"),
    "read eligibility history": N_("read eligibility history"),
    "read household": N_("read household"),
    "read person": N_("read person"),
    "read relocation": N_("read relocation"),
    "search households": N_("search households"),
    "search persons": N_("search persons"),
    "verify status reference": N_("verify status reference"),
}
"""What the read log says was done (:class:`api.http.dependencies.AccessLog`), in words."""
DEAD_LETTER_STATES = {
    "pending": N_("Waiting for a replay"),
    "replayed": N_("Replayed"),
    "discarded": N_("Discarded"),
}
REPLAY_OUTCOMES = {
    "replayed": N_("Replayed: the message was applied."),
    "already replayed": N_("It had already been replayed: nothing changed."),
    "already discarded": N_("It had been discarded: nothing changed."),
    "still failing": N_("Not replayed: the message still fails, nothing changed."),
    "waiting": N_("Not replayed: an older dead letter of the same case must be replayed first."),
}


# --- the inclusion proof's verdict (pure) -------------------------------------------------


@dataclass
class InclusionVerdict:
    """What the standalone verifier (``tools/verify_transparency.py``) would say of a proof:
    the checkpoint is signed by one of the log's keys, and the proof leads from the event's
    chain link to that checkpoint's root hash."""

    signed: bool = False
    signed_by: str | None = None
    included: bool = False
    tree_size: int | None = None
    root_hash: str | None = None
    cosigned_by: list[str] = field(default_factory=list)
    problem: str | None = None  # in English, technical: shown beside the translated verdict

    @property
    def ok(self) -> bool:
        return self.signed and self.included


def check_inclusion(proof: dict[str, Any], log_vkeys: list[str]) -> InclusionVerdict:
    """Check an inclusion proof as the API answered it (``/api/v1/audit/proofs/inclusion``)
    against its signed checkpoint and the log's verifier keys, with RFC 9162's verification."""
    verdict = InclusionVerdict()
    try:
        note = Note.parse(str(proof.get("checkpoint") or ""))
        body = CheckpointBody.parse(note.text)
    except NoteError as exc:
        verdict.problem = f"the checkpoint is not a signed note: {exc}"
        return verdict
    verdict.tree_size, verdict.root_hash = body.size, base64.b64encode(body.root).decode()
    keys = []
    for text in log_vkeys:
        try:
            keys.append(VerifierKey.parse(text))
        except NoteError:
            continue
    for key in keys:
        try:
            if key.algorithm == ED25519 and signed_by(note, key) is not None:
                verdict.signed, verdict.signed_by = True, key.name
                break
        except NoteError as exc:
            verdict.problem = str(exc)
            return verdict
    if not verdict.signed:
        verdict.problem = "no signature on the checkpoint verifies with the log's keys"
        return verdict
    verdict.cosigned_by = sorted({s.name for s in note.signatures} - {verdict.signed_by or ""})
    if proof.get("tree_size") != body.size:
        verdict.problem = (
            f"the proof is for a tree of {proof.get('tree_size')} leaves, "
            f"the checkpoint of {body.size}"
        )
        return verdict
    try:
        leaf = merkle.leaf_hash(bytes.fromhex(str(proof["chain_link"])))
        hashes = [base64.b64decode(h, validate=True) for h in proof.get("hashes") or []]
        merkle.verify_inclusion(leaf, int(proof["leaf_index"]), body.size, hashes, body.root)
    except (KeyError, ValueError, TypeError, binascii.Error) as exc:
        verdict.problem = f"the proof is malformed: {exc}"
    except merkle.ProofError as exc:
        verdict.problem = str(exc)
    else:
        verdict.included = True
    return verdict


def summary_lines(report: dict[str, Any], t: Any) -> list[tuple[str, Any]]:
    """The envelope's summary as (label, value) in the page's language; a line of a combined
    envelope ("households: tables compared") names its projection."""
    lines = []
    for key, value in (report.get("summary") or {}).items():
        prefix, _, rest = key.rpartition(": ")
        if key in SUMMARY:
            label = t(SUMMARY[key])
        elif prefix and rest in SUMMARY:
            label = f"{t(PROJECTIONS.get(prefix, prefix))}: {t(SUMMARY[rest])}"
        elif rest.endswith(" rows (rebuilt)"):
            table = rest.removesuffix(" rows (rebuilt)")
            label = t("Rows rebuilt from the log, table %(table)s", table=table)
            if prefix:
                label = f"{t(PROJECTIONS.get(prefix, prefix))}: {label}"
        else:
            label = key
        if isinstance(value, str) and value in VALUES:
            value = t(VALUES[value])
        lines.append((label, value))
    return lines


# --- pages ------------------------------------------------------------------------------


def _refused(page: Page, answer: Answer) -> None:
    """The API's refusal as the console's: sign in again, forbidden, not found."""
    if answer.status == 401:
        raise SignInRequired(str(page.request.url.path))
    if answer.status == 403:
        raise PageProblem(403, "Your role may not open this page")
    if answer.status == 404:
        raise PageProblem(404, "Not found")


@router.get("/console/audit")
async def overview(page: AuditPage) -> Response:
    return page.render("audit/overview.html")


VERIFIED_PER_SECOND = 40_000
"""About how many events a verification checks a second on the committee's hardware (the
benchmark's chain verification), for the page to say how long the wait will be."""


@router.get("/console/audit/verification")
async def verification(page: AuditPage, run: bool = False) -> Response:
    """The newest checkpoint, and the whole chain verified when asked (``run``): a
    verification reads every event, minutes at the national size, so it runs only on the
    auditor's request, one at a time."""
    checkpoints = await page.api.get("/api/v1/audit/checkpoints")
    _refused(page, checkpoints)
    newest = (checkpoints.body.get("checkpoints") or [None])[-1] if checkpoints.ok else None
    events = int((newest or {}).get("position") or 0)
    report: dict[str, Any] | None = None
    problem: str | None = None
    busy = False
    if run:
        answer = await page.api.get("/api/v1/audit/verification")
        _refused(page, answer)
        busy = answer.status == 409
        report = answer.body if answer.ok else None
        problem = None if busy else answer.problem.get("detail")
    return page.render(
        "audit/verification.html",
        asked=run,
        busy=busy,
        report=report,
        problem=problem,
        lines=summary_lines(report, page.t) if report else [],
        newest=newest,
        minutes=max(1, round(events / VERIFIED_PER_SECOND / 60)),
    )


@router.get("/console/audit/checkpoints")
async def checkpoints(page: AuditPage) -> Response:
    answer = await page.api.get("/api/v1/audit/checkpoints")
    _refused(page, answer)
    latest = await page.api.get("/api/v1/audit/checkpoints/latest")
    keys = await page.api.get("/api/v1/audit/public-key")
    note = latest.body if latest.ok and isinstance(latest.body, str) else None
    return page.render(
        "audit/checkpoints.html",
        checkpoints=list(reversed(answer.body.get("checkpoints") or [])),
        note=note,
        signatures=_signatures(note),
        keys=keys.body if keys.ok else {},
    )


def _signatures(note: str | None) -> list[str]:
    try:
        return [s.name for s in Note.parse(note).signatures] if note else []
    except NoteError:
        return []


@router.get("/console/audit/proofs")
async def inclusion(
    page: AuditPage, position: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    context: dict[str, Any] = {"position": position or "", "proof": None, "verdict": None}
    number = _position(position)
    if position is not None and number is None:
        context["error"] = page.t("Give a whole number from 1 up.")
    elif number is not None:
        answer = await page.api.get(f"/api/v1/audit/proofs/inclusion/{number}")
        if answer.status == 401:
            raise SignInRequired(str(page.request.url))
        if answer.ok:
            keys = await page.api.get("/api/v1/audit/public-key")
            vkeys = keys.body.get("vkeys") or [] if keys.ok else []
            context |= {"proof": answer.body, "verdict": check_inclusion(answer.body, vkeys)}
        else:
            context["error"] = page.t("The log has no proof for this position yet.")
            context["detail"] = answer.problem.get("detail")
    return page.render("audit/proofs.html", **context)


def _position(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    number = int(text.strip())
    return number if 1 <= number <= 2**63 - 1 else None


@router.get("/console/audit/projections")
async def projections(
    page: AuditPage,
    projection: Annotated[str | None, Query(max_length=40)] = None,
    run: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    chosen = projection if projection in PROJECTIONS else None
    context: dict[str, Any] = {"projection": chosen or "", "report": None, "names": PROJECTIONS}
    if run:
        answer = await page.api.get("/api/v1/audit/projections", params={"projection": chosen})
        _refused(page, answer)
        if answer.ok:
            context |= {"report": answer.body, "lines": summary_lines(answer.body, page.t)}
        else:
            context["error"] = answer.problem.get("detail")
    partial = page.request.headers.get("hx-request") and run
    return page.render(
        "audit/_cross_check.html" if partial else "audit/projections.html", **context
    )


@router.get("/console/audit/access-log")
async def access_log(
    page: AuditorPage,
    user: Annotated[str | None, Query(max_length=200)] = None,
    subject: Annotated[str | None, Query(max_length=60)] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Response:
    errors: dict[str, str] = {}
    subject_id = None
    if subject and subject.strip():
        try:
            subject_id = UUID(subject.strip())
        except ValueError:
            errors["subject"] = page.t("Give the id of a person or household (a UUID).")
    entries: list[dict[str, Any]] = []
    following = None
    if not errors:
        answer = await page.api.get(
            "/api/v1/audit/access-log",
            params={
                "actor_id": (user or "").strip() or None,
                "subject_id": str(subject_id) if subject_id else None,
                "after_id": after,
                "limit": PAGE_SIZE,
            },
        )
        _refused(page, answer)
        if answer.ok:
            entries = answer.body["entries"]
            following = answer.body["next_after_id"] if len(entries) == PAGE_SIZE else None
        else:
            for name, reasons in answer.field_errors().items():
                errors["subject" if "subject" in name else "user"] = "; ".join(reasons)
    return page.render(
        "audit/access_log.html",
        entries=entries,
        actions=ACTIONS,
        user=user or "",
        subject=subject or "",
        after=after,
        following=following,
        errors=errors,
    )


@router.get("/console/audit/dead-letters")
async def dead_letters(page: SupervisorPage) -> Response:
    return await _dead_letters(page)


async def _dead_letters(page: Page, status: int = 200, **context: Any) -> Response:
    answer = await page.api.get(
        "/api/v1/operations/dead-letters", params={"include_resolved": "true"}
    )
    _refused(page, answer)
    letters = answer.body.get("dead_letters") or []
    pending = [d for d in letters if d["state"] == "pending"]
    resolved = sorted(
        (d for d in letters if d["state"] != "pending"),
        key=lambda d: str(d.get("replayed_at") or d.get("discarded_at") or ""),
        reverse=True,
    )
    if page.request.headers.get("hx-request"):
        status = 200  # htmx swaps only a 2xx answer: the outcome is in the page itself
    context.setdefault("errors", {})
    context.setdefault("result", None)
    return page.render(
        "audit/dead_letters.html",
        status=status,
        pending=pending,
        resolved=resolved[:20],
        names=PROJECTIONS,
        states=DEAD_LETTER_STATES,
        outcomes=REPLAY_OUTCOMES,
        **context,
    )


@router.post("/console/audit/dead-letters/{projection}/{dead_letter_id}/replay")
async def replay(
    page: SupervisorPage,
    projection: str,
    dead_letter_id: int,
    csrf: Annotated[str | None, Form()] = None,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    page.check_csrf(csrf)
    if projection not in PROJECTIONS:
        raise PageProblem(404, "Not found")
    key = f"{projection}-{dead_letter_id}"
    if not reason.strip():
        errors = {key: page.t("Say why it is replayed now: what was fixed.")}
        return await _dead_letters(page, 422, errors=errors, reason=reason, target=key)
    answer = await page.api.post(
        f"/api/v1/operations/dead-letters/{projection}/{dead_letter_id}/replay",
        json={"reason": reason},
    )
    _refused(page, answer)
    if answer.status == 422:
        reasons = [r for found in answer.field_errors().values() for r in found]
        errors = {key: "; ".join(reasons) or page.t("Say why it is replayed now: what was fixed.")}
        return await _dead_letters(page, 422, errors=errors, reason=reason, target=key)
    body = answer.body if isinstance(answer.body, dict) else {}
    result = {
        "ok": answer.ok,
        "projection": projection,
        "id": dead_letter_id,
        "outcome": body.get("outcome"),
        "why": body.get("reason") if answer.ok else body.get("detail"),
        "released": body.get("released") or 0,
    }
    return await _dead_letters(page, 200 if answer.ok else 409, result=result)

"""`reintegration witness ...`: run by an institution outside the committee, on its own machine,
with its own key and state: it cosigns the log's checkpoints once each extends the last one it
cosigned, and refuses (keeping the evidence) any that does not."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import console, fail

witness_cli = typer.Typer(no_args_is_help=True, help="Witness the transparency log (cosign).")


@witness_cli.command("keygen")
def witness_keygen(
    name: Annotated[
        str, typer.Option(help="The witness's name, e.g. public-council.example/witness")
    ],
) -> None:
    """A new witness key: the private seed (WITNESS_SIGNING_KEY; keep it on the witness's own
    machine) and the verifier key the log and auditors are given (AUDIT_WITNESSES)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from infra.signed_note import COSIGNATURE_V1, VerifierKey, raw_public

    if not name or any(c.isspace() or c == "+" for c in name):
        raise fail("--name must be non-empty, without spaces or '+'")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    typer.echo(f"WITNESS_SIGNING_KEY={base64.b64encode(seed).decode()}")
    typer.echo("verifier key (publish it; the log's AUDIT_WITNESSES):")
    typer.echo(str(VerifierKey(name, COSIGNATURE_V1, raw_public(key))))


@witness_cli.command("run")
def witness_run(
    log_url: Annotated[str, typer.Option("--log", help="The log's base URL (https://...)")],
    name: Annotated[str, typer.Option(help="This witness's name (as in its verifier key)")],
    log_vkey: Annotated[
        list[str], typer.Option(help="The log's verifier key (repeat while keys rotate)")
    ],
    state: Annotated[Path, typer.Option(help="This witness's own state directory")],
    signing_key: Annotated[
        str,
        typer.Option(envvar="WITNESS_SIGNING_KEY", help="The witness's private seed (base64)"),
    ],
    interval: Annotated[int, typer.Option(min=1, help="Seconds between rounds")] = 60,
    once: Annotated[bool, typer.Option(help="One round, then exit")] = False,
) -> None:
    """Fetch the latest checkpoint, check its signature and that it extends the last one this
    witness cosigned, cosign it and send the cosignature back; every --interval seconds.
    Exits 3 when the log forked (the evidence is kept under --state/forks)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.signed_note import NoteError, VerifierKey
    from infra.witness import ForkDetected, HttpLog, Witness, WitnessRefused, WitnessState

    try:
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_key, validate=True))
        log_keys = [VerifierKey.parse(k) for k in log_vkey]
        witness = Witness(name, key, log_keys, WitnessState(state), HttpLog(log_url))
    except (ValueError, NoteError, WitnessRefused) as exc:
        raise fail(f"cannot start the witness: {exc}") from None
    while True:
        try:
            done = witness.witness_once()
            console.print(
                f"cosigned tree size {done.tree_size} (after {done.previous_size})",
                highlight=False,
            )
        except ForkDetected as exc:
            console.print(f"FORK: {exc}", style="red", highlight=False)
            raise typer.Exit(3) from None
        except (WitnessRefused, OSError, ValueError, KeyError) as exc:  # a malformed answer too
            if once:
                raise fail(f"not cosigned: {exc}") from None
            console.print(f"not cosigned this round: {exc}", highlight=False)
        if once:
            return
        time.sleep(interval)

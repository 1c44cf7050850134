"""All configuration, read from environment variables in this one place.

Kept whole on purpose: one file a deployer reads to learn every variable, with its default
and its check. Where it splits next: the console's and the identity provider's parsers
(``_console``, ``_oidc``) into ``infra/config_identity.py``.

Every variable is documented in the README's "Configuration" table.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from domain.base import ROLES, Actor
from infra.identity import (
    Authenticator,
    IdentityError,
    OidcConfig,
    OidcTokens,
    StaticToken,
    StaticTokens,
    parse_token_hashes,
    token_hash,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigurationError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    environment: str = "production"  # or "development"
    database_url: str | None = None
    # "service": each process creates and upgrades its tables; "owner": the owner role does
    # (reintegration db create-roles) and processes change no table.
    schema_managed_by: str = "service"
    data_dir: Path = PROJECT_ROOT / ".data"
    kafka_bootstrap_servers: str | None = None
    kafka_topic_prefix: str = "reintegration"
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    api_tokens: Mapping[str, Actor] = field(default_factory=dict)  # plaintext: development only
    api_token_hashes: Mapping[str, StaticToken] = field(default_factory=dict)
    oidc: OidcConfig | None = None
    auth_failures_per_minute: int = 10
    http_rate_limit: str = "600/minute"
    http_docs: str = "authenticated"  # public, authenticated or off
    http_metrics: str = "authenticated"
    log_format: str = "json"
    log_level: str = "info"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    http_max_body_bytes: int = 1024 * 1024
    db_pool_size: int = 10
    relay_batch_size: int = 5000
    projection_batch_size: int = 500
    kafka_group_instance_id: str | None = None
    metrics_port: int | None = None
    audit_signing_key: str | None = None
    audit_public_keys: tuple[AuditKey, ...] = ()
    audit_checkpoint_interval_s: int = 60
    audit_checkpoint_max_age_s: int = 180
    audit_log_origin: str = "reintegration.local/audit-log"
    audit_witnesses: tuple[str, ...] = ()  # verifier keys (type 0x04) of the witnesses
    audit_witness_quorum: int = 0
    audit_witness_max_age_s: int = 3600
    lottery_participant_keys: tuple[str, ...] = ()  # verifier keys (type 0x01) of participants
    audit_tsa_url: str | None = None
    audit_tsa_certificates: Path | None = None
    audit_tsa_timeout_s: float = 10.0
    default_rule_set: str = "great-return-housing"
    console: ConsoleConfig = field(default_factory=lambda: ConsoleConfig())

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def manages_schema(self) -> bool:
        """Whether this process creates and upgrades the tables it uses at start-up. Not when
        the owner role keeps them (``DATABASE_SCHEMA_MANAGED=owner``): the application role may
        not change a table, and tries nothing of the kind."""
        return self.schema_managed_by == "service"

    @property
    def kafka_enabled(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        environment = env.get("REINTEGRATION_ENV", "production").strip().lower()
        if environment not in ("production", "development"):
            raise ConfigurationError(
                f"REINTEGRATION_ENV must be production or development, not {environment!r}"
            )
        log_format = env.get("LOG_FORMAT", "console" if environment == "development" else "json")
        if log_format not in ("json", "console"):
            raise ConfigurationError(f"LOG_FORMAT must be json or console, not {log_format!r}")
        witnesses = parse_witnesses(env.get("AUDIT_WITNESSES") or "")
        api_tokens = parse_api_tokens(env.get("API_TOKENS", ""))
        if api_tokens and environment != "development":
            raise ConfigurationError(
                "API_TOKENS holds plaintext tokens, which only development mode accepts: give "
                "their hashes in API_TOKEN_HASHES (`reintegration tokens mint` makes a token "
                "and its entry) or connect the identity provider (OIDC_*)"
            )
        try:
            token_hashes = parse_token_hashes(env.get("API_TOKEN_HASHES", ""))
        except IdentityError as exc:
            raise ConfigurationError(str(exc)) from None
        schema_managed_by = (env.get("DATABASE_SCHEMA_MANAGED") or "service").strip().lower()
        if schema_managed_by not in ("service", "owner"):
            raise ConfigurationError(
                f"DATABASE_SCHEMA_MANAGED must be service or owner, not {schema_managed_by!r}"
            )
        return cls(
            environment=environment,
            database_url=env.get("DATABASE_URL") or None,
            schema_managed_by=schema_managed_by,
            data_dir=Path(env.get("REINTEGRATION_DATA_DIR") or PROJECT_ROOT / ".data"),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_topic_prefix=env.get("KAFKA_TOPIC_PREFIX") or "reintegration",
            kafka_partitions=_positive_int(env, "KAFKA_PARTITIONS", 6),
            kafka_replication_factor=_positive_int(env, "KAFKA_REPLICATION_FACTOR", 1),
            kafka_min_insync_replicas=_positive_int(env, "KAFKA_MIN_INSYNC_REPLICAS", 1),
            api_tokens=api_tokens,
            api_token_hashes=token_hashes,
            oidc=_oidc(env),
            auth_failures_per_minute=_positive_int(env, "HTTP_AUTH_FAILURES_PER_MINUTE", 10),
            http_rate_limit=_rate_limit(env.get("HTTP_RATE_LIMIT") or "600/minute"),
            http_docs=_exposure(
                env, "HTTP_DOCS", "public" if environment == "development" else "authenticated"
            ),
            http_metrics=_exposure(env, "HTTP_METRICS", "authenticated"),
            log_format=log_format,
            log_level=env.get("LOG_LEVEL", "info").lower(),
            http_host=env.get("HTTP_HOST", "127.0.0.1"),
            http_port=_positive_int(env, "HTTP_PORT", 8000),
            http_max_body_bytes=_positive_int(env, "HTTP_MAX_BODY_BYTES", 1024 * 1024),
            db_pool_size=_positive_int(env, "DB_POOL_SIZE", 10),
            relay_batch_size=_positive_int(env, "RELAY_BATCH_SIZE", 5000),
            projection_batch_size=_positive_int(env, "PROJECTION_BATCH_SIZE", 500),
            kafka_group_instance_id=env.get("KAFKA_GROUP_INSTANCE_ID") or None,
            audit_signing_key=env.get("AUDIT_SIGNING_KEY") or None,
            audit_public_keys=parse_audit_keys(
                ",".join(filter(None, (env.get("AUDIT_PUBLIC_KEYS"), env.get("AUDIT_PUBLIC_KEY"))))
            ),
            audit_checkpoint_interval_s=_positive_int(env, "AUDIT_CHECKPOINT_INTERVAL_S", 60),
            audit_checkpoint_max_age_s=_positive_int(
                env,
                "AUDIT_CHECKPOINT_MAX_AGE_S",
                3 * _positive_int(env, "AUDIT_CHECKPOINT_INTERVAL_S", 60),
            ),
            audit_log_origin=_origin(
                env.get("AUDIT_LOG_ORIGIN") or "reintegration.local/audit-log"
            ),
            audit_witnesses=witnesses,
            audit_witness_quorum=_quorum(env, witnesses),
            audit_witness_max_age_s=_witness_max_age(env, witnesses),
            lottery_participant_keys=parse_participant_keys(
                env.get("LOTTERY_PARTICIPANT_KEYS") or ""
            ),
            audit_tsa_url=_tsa_url(env),
            audit_tsa_certificates=_tsa_certificates(env),
            audit_tsa_timeout_s=_positive_float(env, "AUDIT_TSA_TIMEOUT_S", 10.0),
            metrics_port=_positive_int(env, "METRICS_PORT", 1) if env.get("METRICS_PORT") else None,
            default_rule_set=env.get("ELIGIBILITY_RULE_SET") or "great-return-housing",
            console=_console(env, environment),
        )

    def authenticator(self, tokens: Mapping[str, Actor] | None = None) -> Authenticator:
        """Who a bearer token stands for, as configured: the identity provider's access tokens,
        the static tokens by their hashes, and (development and tests) plaintext tokens, which
        are kept as hashes too."""
        hashes = dict(self.api_token_hashes)
        for token, actor in {**self.api_tokens, **(tokens or {})}.items():
            hashes[token_hash(token)] = StaticToken(actor)
        return Authenticator(
            StaticTokens(hashes) if hashes else None,
            OidcTokens(self.oidc) if self.oidc else None,
        )

    @property
    def identities_configured(self) -> bool:
        return bool(self.api_tokens or self.api_token_hashes or self.oidc)

    def with_tokens_for_api(self) -> tuple[Settings, dict[str, Actor]]:
        """Tokens the API accepts. Development mode invents one per role when none are given;
        production refuses to start without an identity provider or token hashes. Returns the
        settings and any invented tokens."""
        if self.identities_configured:
            return self, {}
        if not self.development:
            raise ConfigurationError(
                "no identities: production mode refuses to start without OIDC_ISSUER, "
                "OIDC_AUDIENCE and OIDC_JWKS_URL or API_TOKEN_HASHES "
                "(`reintegration tokens mint`), or set REINTEGRATION_ENV=development"
            )
        invented = {
            f"dev-{role}-{secrets.token_urlsafe(12)}": Actor(f"dev-{role}", role) for role in ROLES
        }
        return _replace(self, api_tokens=invented), invented


@dataclass(frozen=True)
class AuditKey:
    """A published Ed25519 public key that checkpoints are verified with, and when it may have
    signed (either end open)."""

    public: bytes
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.public).hexdigest()[:16]

    def valid_at(self, moment: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= moment) and (
            self.valid_until is None or moment < self.valid_until
        )


def parse_audit_keys(raw: str) -> tuple[AuditKey, ...]:
    """``AUDIT_PUBLIC_KEYS``: comma-separated ``KEY`` or ``KEY@FROM/UNTIL``, the key in base64
    (32 bytes), FROM and UNTIL ISO 8601 dates or times in UTC (either may be empty)."""
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        encoded, _, validity = item.partition("@")
        try:
            public = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            public = b""
        if len(public) != 32:
            raise ConfigurationError(
                f"AUDIT_PUBLIC_KEYS entry {encoded.strip()[:12]!r}... is not a base64 Ed25519 "
                "public key (32 bytes)"
            )
        start, _, end = validity.partition("/")
        keys.append(AuditKey(public, _moment(start, item), _moment(end, item)))
    return tuple(keys)


def parse_witnesses(raw: str) -> tuple[str, ...]:
    """``AUDIT_WITNESSES``: the witnesses' verifier keys (C2SP vkeys of type 0x04,
    ``name+keyhash+base64``), comma-separated."""
    from infra.signed_note import COSIGNATURE_V1, NoteError, VerifierKey

    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            key = VerifierKey.parse(item)
        except NoteError as exc:
            raise ConfigurationError(f"AUDIT_WITNESSES: {exc}") from None
        if key.algorithm != COSIGNATURE_V1:
            raise ConfigurationError(
                f"AUDIT_WITNESSES: {key.name!r} is not a cosigner key (type 0x04); "
                "`reintegration witness keygen` prints one"
            )
        found.append(str(key))
    if len({VerifierKey.parse(k).name for k in found}) != len(found):
        raise ConfigurationError("AUDIT_WITNESSES names a witness twice")
    if len({VerifierKey.parse(k).public for k in found}) != len(found):
        raise ConfigurationError(
            "AUDIT_WITNESSES holds one key under two names: a quorum needs distinct witnesses"
        )
    return tuple(found)


def parse_participant_keys(raw: str) -> tuple[str, ...]:
    """``LOTTERY_PARTICIPANT_KEYS``: the lottery participants' verifier keys (C2SP vkeys of
    type 0x01, named as the participants), comma-separated."""
    from infra.signed_note import ED25519, NoteError, VerifierKey

    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            key = VerifierKey.parse(item)
        except NoteError as exc:
            raise ConfigurationError(f"LOTTERY_PARTICIPANT_KEYS: {exc}") from None
        if key.algorithm != ED25519:
            raise ConfigurationError(
                f"LOTTERY_PARTICIPANT_KEYS: {key.name!r} is not a signing key (type 0x01); "
                "`reintegration lottery keygen` prints one"
            )
        found.append(key)
    if len({k.name for k in found}) != len(found) or len({k.public for k in found}) != len(found):
        raise ConfigurationError("LOTTERY_PARTICIPANT_KEYS names a participant or a key twice")
    return tuple(str(k) for k in found)


def _witness_max_age(env: Mapping[str, str], witnesses: tuple[str, ...]) -> int:
    """At least 15 minutes: the log keeps a witness's cosignature of an unchanged checkpoint
    every 5 minutes (an idle log stays witnessed), and witnesses run every minute or so."""
    age = _positive_int(env, "AUDIT_WITNESS_MAX_AGE_S", 3600)
    if witnesses and age < 900:
        raise ConfigurationError(
            "AUDIT_WITNESS_MAX_AGE_S must be at least 900: cosignatures of an unchanged "
            "checkpoint are kept every 300 s"
        )
    return age


def _quorum(env: Mapping[str, str], witnesses: tuple[str, ...]) -> int:
    quorum = _positive_int(env, "AUDIT_WITNESS_QUORUM", len(witnesses) or 1)
    if witnesses and quorum > len(witnesses):
        raise ConfigurationError(
            f"AUDIT_WITNESS_QUORUM is {quorum} but AUDIT_WITNESSES names {len(witnesses)}"
        )
    return quorum if witnesses else 0


def _origin(raw: str) -> str:
    origin = raw.strip()
    if not origin or any(c.isspace() or c == "+" for c in origin):
        raise ConfigurationError(
            "AUDIT_LOG_ORIGIN must be a name without spaces or '+', such as "
            "committee.example/reintegration-log"
        )
    return origin


def _moment(raw: str, item: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        found = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigurationError(
            f"AUDIT_PUBLIC_KEYS: {raw.strip()!r} is not an ISO 8601 date or time"
        ) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def parse_api_tokens(raw: str) -> dict[str, Actor]:
    tokens: dict[str, Actor] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        token, sep, who = item.partition("=")
        user_id, sep2, role = who.partition(":")
        if not sep or not sep2 or not token.strip() or not user_id.strip():
            raise ConfigurationError(
                f"API_TOKENS entry {item!r} is not of the form token=user_id:role"
            )
        if role.strip() not in ROLES:
            raise ConfigurationError(
                f"API_TOKENS entry for {user_id!r} has role {role!r}; roles are {', '.join(ROLES)}"
            )
        tokens[token.strip()] = Actor(user_id.strip(), role.strip())
    return tokens


@dataclass(frozen=True)
class ConsoleConfig:
    """The web console (``api/console``): the key its session cookies are encrypted with, the
    address it is reached at (the sign-in's redirect comes back there), and the identity
    provider's client for the authorization code flow with PKCE."""

    session_key: str | None = None  # a Fernet key; development invents one per process
    public_url: str | None = None  # e.g. https://reintegration.example.gov.az
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None  # none: a public client (PKCE alone)
    oidc_discovery_url: str | None = None  # the provider's openid-configuration
    session_hours: int = 8

    @property
    def oidc_sign_in(self) -> bool:
        return bool(self.oidc_client_id and self.oidc_discovery_url)


def _console(env: Mapping[str, str], environment: str) -> ConsoleConfig:
    """``CONSOLE_SESSION_KEY`` (required outside development: every worker must read every
    session), ``CONSOLE_PUBLIC_URL`` and ``OIDC_CLIENT_ID`` (with ``OIDC_CLIENT_SECRET`` for a
    confidential client) and ``OIDC_DISCOVERY_URL`` (default: the issuer's
    ``/.well-known/openid-configuration``)."""
    from cryptography.fernet import Fernet

    key = (env.get("CONSOLE_SESSION_KEY") or "").strip() or None
    if key is not None:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigurationError(
                "CONSOLE_SESSION_KEY must be a Fernet key (32 bytes, url-safe base64): "
                "`reintegration console keygen` makes one"
            ) from None
    client_id = (env.get("OIDC_CLIENT_ID") or "").strip() or None
    issuer = (env.get("OIDC_ISSUER") or "").strip().rstrip("/")
    discovery = (env.get("OIDC_DISCOVERY_URL") or "").strip() or (
        f"{issuer}/.well-known/openid-configuration" if issuer and client_id else None
    )
    public_url = (env.get("CONSOLE_PUBLIC_URL") or "").strip().rstrip("/") or None
    if client_id and environment != "development":
        for name, url in (("OIDC_DISCOVERY_URL", discovery), ("CONSOLE_PUBLIC_URL", public_url)):
            if not url or urlsplit(url).scheme != "https":
                raise ConfigurationError(f"{name} must be an https: URL for the console's sign-in")
        if key is None:
            raise ConfigurationError(
                "CONSOLE_SESSION_KEY is required for the console's sign-in outside development"
            )
    return ConsoleConfig(
        session_key=key,
        public_url=public_url,
        oidc_client_id=client_id,
        oidc_client_secret=(env.get("OIDC_CLIENT_SECRET") or "").strip() or None,
        oidc_discovery_url=discovery,
        session_hours=_positive_int(env, "CONSOLE_SESSION_HOURS", 8),
    )


def _oidc(env: Mapping[str, str]) -> OidcConfig | None:
    """``OIDC_ISSUER``, ``OIDC_AUDIENCE`` and ``OIDC_JWKS_URL`` together, or none of them."""
    names = ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL")
    given = {name: (env.get(name) or "").strip() for name in names}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigurationError(f"{', '.join(missing)} must be set with the other OIDC_ variables")
    if urlsplit(given["OIDC_JWKS_URL"]).scheme not in ("https", "file"):
        raise ConfigurationError("OIDC_JWKS_URL must be an https: or file: URL")
    return OidcConfig(
        issuer=given["OIDC_ISSUER"],
        audience=given["OIDC_AUDIENCE"],
        jwks_url=given["OIDC_JWKS_URL"],
        roles_claim=(env.get("OIDC_ROLES_CLAIM") or "roles").strip(),
        districts_claim=(env.get("OIDC_DISTRICTS_CLAIM") or "districts").strip(),
        user_claim=(env.get("OIDC_USER_CLAIM") or "preferred_username").strip(),
    )


def _rate_limit(raw: str) -> str:
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ConfigurationError(
            f"HTTP_RATE_LIMIT must read like '600/minute' or '20/second;600/minute', not {raw!r}"
        ) from None
    return raw


def _exposure(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in ("public", "authenticated", "off"):
        raise ConfigurationError(f"{name} must be public, authenticated or off, not {value!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, not {value}")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _tsa_url(env: Mapping[str, str]) -> str | None:
    """``AUDIT_TSA_URL``: where checkpoints are timestamped (RFC 3161 over HTTP); needs
    ``AUDIT_TSA_CERTIFICATES``, so that no token is kept that could not be verified."""
    raw = (env.get("AUDIT_TSA_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            "AUDIT_TSA_URL must be an http:// or https:// URL of a timestamping authority"
        )
    if not (env.get("AUDIT_TSA_CERTIFICATES") or "").strip():
        raise ConfigurationError(
            "AUDIT_TSA_URL is set but AUDIT_TSA_CERTIFICATES is not: set it to a PEM file "
            "holding the authority's root certificate (and intermediates), so its tokens "
            "can be verified"
        )
    return raw


def _tsa_certificates(env: Mapping[str, str]) -> Path | None:
    raw = (env.get("AUDIT_TSA_CERTIFICATES") or "").strip()
    if not raw:
        return None
    path = Path(raw)
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(
            f"AUDIT_TSA_CERTIFICATES: cannot read {raw!r} ({error.strerror or error})"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError(
            f"AUDIT_TSA_CERTIFICATES: {raw!r} holds no PEM certificate "
            "(-----BEGIN CERTIFICATE-----)"
        )
    return path


def _replace(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)  # type: ignore[arg-type]

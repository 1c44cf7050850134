"""A local RFC 3161 timestamping authority for the tests, built on ``openssl ts``.

``make_authority(folder)`` creates a root CA, a TSA certificate under it (critical extended
key usage timeStamping, as RFC 3161 requires) and the ``openssl ts`` configuration;
``serving(authority)`` answers ``application/timestamp-query`` POSTs on 127.0.0.1 by running
``openssl ts -reply``, one request at a time (the authority's serial file is not shared).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

EXTENSIONS = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[root_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[tsa_cert]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

# No `certs =`: the reply carries the TSA's certificate alone. OpenSSL writes a certificate
# set in the order given, not in DER order, which a strict parser (rfc3161-client's) refuses.
TSA_CONFIG = """\
[tsa]
default_tsa = local_tsa
[local_tsa]
serial = {folder}/serial
signer_cert = {folder}/tsa.pem
signer_key = {folder}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1.1
other_policies = 1.3.6.1.4.1.55555.1.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class Authority:
    folder: Path

    @property
    def ca_pem(self) -> Path:
        """The root certificate to verify this authority's tokens with."""
        return self.folder / "ca.pem"

    @property
    def config(self) -> Path:
        return self.folder / "ts.cnf"

    def reply(self, query: bytes) -> bytes:
        """``openssl ts -reply`` to one DER TimeStampReq."""
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tsq") as file:
            file.write(query)
            file.flush()
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-queryfile", file.name, "-config", str(self.config)],
                capture_output=True,
                check=True,
                timeout=30,
            )
        return done.stdout


@dataclass(frozen=True)
class LocalTSA:
    """A running local authority: POST queries to ``url``; verify with ``ca_pem``."""

    url: str
    ca_pem: Path
    authority: Authority


def make_authority(folder: Path, name: str = "Local test") -> Authority:
    folder.mkdir(parents=True, exist_ok=True)
    extensions = folder / "extensions.cnf"
    extensions.write_text(EXTENSIONS)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(
        folder,
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3"],
        ["-config", "extensions.cnf", "-extensions", "root_ca", "-subj", f"/CN={name} root"],
    )
    _openssl(
        folder,
        ["req", "-new", *ec, "-keyout", "tsa.key", "-out", "tsa.csr"],
        ["-config", "extensions.cnf", "-subj", f"/CN={name} TSA"],
    )
    _openssl(
        folder,
        ["x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out", "tsa.pem"],
        ["-set_serial", "2", "-days", "2", "-extfile", "extensions.cnf", "-extensions", "tsa_cert"],
    )
    (folder / "serial").write_text("01\n")
    authority = Authority(folder)
    authority.config.write_text(TSA_CONFIG.format(folder=folder))
    return authority


@contextmanager
def serving(authority: Authority) -> Iterator[LocalTSA]:
    """Answer timestamp queries over HTTP on a free local port while the block runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415)
                return
            try:
                body = authority.reply(query)
            except subprocess.CalledProcessError:
                self.send_error(400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalTSA(f"http://127.0.0.1:{server.server_port}/tsr", authority.ca_pem, authority)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def silent_tsa() -> Iterator[str]:
    """A URL whose server accepts the connection and never answers (a hung authority)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/tsr"
    finally:
        listener.close()


def unused_url() -> str:
    """A URL nothing listens on (an authority that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsr"


def _openssl(folder: Path, *parts: list[str]) -> None:
    command = ["openssl", *(arg for part in parts for arg in part)]
    subprocess.run(command, cwd=folder, capture_output=True, check=True, timeout=30)

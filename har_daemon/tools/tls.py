"""Certificates for TLS tests and benchmarks: a throw-away CA, server and client, by openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["OPENSSL", "make_tls_files", "run_tool"]

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


def run_tool(cmd: list[str], cwd: Path | None = None) -> None:
    """Run a helper program; RuntimeError with its stderr when it fails."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()}")


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A self-signed CA, a server cert for 127.0.0.1/localhost and a client cert, made by openssl.

    Returns paths under the keys ca_cert, ca_key, server_cert, server_key, client_cert,
    client_key. Keys are EC P-256 (fast to make); certificates are valid for two days.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cnf = folder / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    req = [OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-config", str(cnf)]  # fmt: skip
    run_tool([*req, "-x509", "-extensions", "ca", "-days", "2", "-subj", "/CN=har-daemon test CA",
              "-keyout", "ca.key", "-out", "ca.crt"], folder)  # fmt: skip
    for role, cn in (("server", "localhost"), ("client", "har-daemon-test-client")):
        run_tool([*req, "-new", "-subj", f"/CN={cn}", "-keyout", f"{role}.key",
                  "-out", f"{role}.csr"], folder)  # fmt: skip
        run_tool([OPENSSL, "x509", "-req", "-in", f"{role}.csr", "-CA", "ca.crt",
                  "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", str(cnf),
                  "-extensions", role, "-out", f"{role}.crt"], folder)  # fmt: skip
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return {
        f"{role}_{kind}": folder / f"{role}.{ext}"
        for role in ("ca", "server", "client")
        for kind, ext in (("cert", "crt"), ("key", "key"))
    }

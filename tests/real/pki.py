"""A cluster's certificates, as kubeadm lays them out for kind: a CA, the API server's serving cert, client certs.

Made with the `openssl` command (on every machine of this kind); keys are ECDSA P-256 (fast to make), valid a day.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "1"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


class OpensslMissing(Exception):
    """No `openssl` on PATH."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Pki:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.folder / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.folder / "sa.pub"


def make_pki(folder: Path, ip: str, clients: dict[str, tuple[str, str | None]]) -> Pki:
    """CA, `apiserver` serving `ip` (and kubernetes.default's names), sa.key/sa.pub, and clients {file: (CN, O)}."""
    if shutil.which("openssl") is None:
        raise OpensslMissing("the proving ground makes its clusters' certificates with `openssl`; install it (apt-get install -y openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(folder)
    _openssl("req", "-x509", *EC, "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", DAYS,
             "-subj", "/CN=kubernetes", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=folder)
    sans = f"subjectAltName=IP:{ip},IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    _sign(folder, "apiserver", "/CN=kube-apiserver", ["-addext", sans, "-addext", "extendedKeyUsage=serverAuth"],
          ext=f"{sans}\nextendedKeyUsage=serverAuth\n")
    for name, (cn, org) in clients.items():
        subject = f"/O={org}/CN={cn}" if org else f"/CN={cn}"
        _sign(folder, name, subject, [], ext="extendedKeyUsage=clientAuth\n")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key", cwd=folder)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)
    return pki


def _sign(folder: Path, name: str, subject: str, req_ext: list[str], ext: str) -> None:
    _openssl("req", *EC, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, *req_ext, cwd=folder)
    (folder / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", DAYS, "-extfile", f"{name}.ext", cwd=folder)

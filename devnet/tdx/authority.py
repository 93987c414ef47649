"""A dev TDX quote authority: real Intel DCAP v4 TDX quotes and matching collateral under a local test root CA.

Production quotes come from TDX hardware and chain to Intel's SGX root CA; this module forges the same byte
layout with keys it generated itself, so the whole verification path (``dcap_qvl.verify_with_root_ca``:
signatures, certificate chains, CRLs, TCB info, QE identity, times) runs in tests and on the devnet without
hardware. A dev quote never verifies under Intel's root (``dcap_qvl.verify``).

The PKI mirrors Intel's (names differ; certificates are valid from 2020 to 2050 so any "now" in between works)::

    root CA (self-signed, keyCertSign + cRLSign)            → root_ca_der; the root CRL is issued by it
     ├── PCK CA (cA, pathlen 0, keyCertSign + cRLSign)        the PCK CRL is issued by it
     │    └── PCK leaf (SGX extension 1.2.840.113741.1.13.1:  signs the QE report
     │                  PPID, TCB = CPUSVN + PCESVN, PCE-ID, FMSPC, SGX type)
     └── TCB signer (digitalSignature)                        signs TCB info and QE identity

Quote layout (integers little-endian; offsets are absolute)::

    0    header (48)       version 4, key type 2 (ECDSA P-256), TEE type 0x81, QE SVN, PCE SVN,
                           QE vendor id (Intel's), user data (20)
    48   TD report (584)   TEE TCB SVN, MRSEAM, MRSIGNERSEAM (zero), SEAM attributes, TD attributes,
                           XFAM, MRTD (184), MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3 (376..567),
                           REPORTDATA (568..631)
    632  u32 length of the signature data, then:
         ECDSA r‖s by the attestation key over bytes 0..631, attestation public key X‖Y,
         certification data type 6 = { QE report (384) whose REPORTDATA[0:32] = SHA-256(attestation key ‖
         QE auth data), r‖s of the QE report by the PCK leaf, u16 + 32 bytes QE auth data,
         certification data type 5 = the PEM chain PCK leaf, PCK CA, root }

The collateral (``collateral_json(now=...)``) holds hex DER CRLs, PEM issuer chains, and the TCB info / QE
identity JSON strings with their r‖s signatures by the TCB signer. The TCB info has two platform levels for
the fixed FMSPC: ``UpToDate`` (TEE TCB SVN ≥ 03 01 02 …) and a lower ``OutOfDate`` level (≥ 02 01 01 …, with
a dev advisory id); ``quote(tcb=...)`` picks a TEE TCB SVN that lands on one of them.

Everything but the ECDSA signatures is deterministic: the same authority, report data and measurements give
the same quote bytes up to the signature. The QE report and its signature are made once per authority.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

# --- fixed platform identity -------------------------------------------------------------------------------

FMSPC = bytes.fromhex("00DE70000000")
PCE_ID = bytes.fromhex("0000")
PPID = hashlib.sha256(b"mrmarket.devnet.tdx.ppid").digest()[:16]
PCE_SVN = 11
CPU_SVN = bytes([2, 2, 2, 2, 3, 1, 0, 5] + [0] * 8)  # equals the levels' sgxtcbcomponents
QE_SVN = 4
QE_ISVPRODID = 2
QE_MRSIGNER = hashlib.sha256(b"mrmarket.devnet.tdx.qe.mrsigner").digest()
QE_MRENCLAVE = hashlib.sha256(b"mrmarket.devnet.tdx.qe.mrenclave").digest()
QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")  # INIT | MODE64BIT; DEBUG (0x02) clear
QE_AUTH_DATA = hashlib.sha256(b"mrmarket.devnet.tdx.qe.auth").digest()  # exactly 32 bytes
QE_VENDOR_ID = bytes.fromhex("939A7233F79C4CA9940A0DB3957F0607")  # Intel's; dcap-qvl refuses any other
MRSEAM = hashlib.sha384(b"mrmarket.devnet.tdx.mrseam").digest()
XFAM = bytes.fromhex("e702060000000000")
TD_ATTR_SEPT_VE_DISABLE = bytes.fromhex("0000001000000000")
USER_DATA = bytes(20)

# TEE TCB SVN per status: byte 0 = TDX module SVN, byte 1 = module major version (selects "TDX_01").
TEE_TCB_SVNS = {
    "UpToDate": bytes([3, 1, 2] + [0] * 13),
    "OutOfDate": bytes([2, 1, 1] + [0] * 13),
}
_LEVEL_TDX_COMPONENTS = {"UpToDate": [3, 0, 2], "OutOfDate": [1, 0, 1]}
OUT_OF_DATE_ADVISORIES = ["DEV-SA-00001"]

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2050, 1, 1, tzinfo=datetime.UTC)
DAY = 86_400

QUOTE_VERSION = 4
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
TEE_TYPE_TDX = 0x81
CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5

_KEY_NAMES = ("root", "pck_ca", "pck", "tcb", "attestation")
_CERT_NAMES = ("root", "pck_ca", "pck", "tcb")


# --- minimal DER, for the SGX extension ----------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for value in parts[2:]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


def _der_int(value: int, tag: int = 0x02) -> bytes:
    return _der(tag, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _der_seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _sgx_extension() -> bytes:
    base = SGX_EXTENSION_OID
    tcb = [_der_seq(_der_oid(f"{base}.2.{i + 1}"), _der_int(svn)) for i, svn in enumerate(CPU_SVN)]
    tcb.append(_der_seq(_der_oid(f"{base}.2.17"), _der_int(PCE_SVN)))
    tcb.append(_der_seq(_der_oid(f"{base}.2.18"), _der(0x04, CPU_SVN)))
    return _der_seq(
        _der_seq(_der_oid(f"{base}.1"), _der(0x04, PPID)),
        _der_seq(_der_oid(f"{base}.2"), _der_seq(*tcb)),
        _der_seq(_der_oid(f"{base}.3"), _der(0x04, PCE_ID)),
        _der_seq(_der_oid(f"{base}.4"), _der(0x04, FMSPC)),
        _der_seq(_der_oid(f"{base}.5"), _der_int(0, tag=0x0A)),  # SGX type: Standard
    )


# --- certificates --------------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MRMarket devnet"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _key_usage(*, sign: bool = False, cert_sign: bool = False, non_repudiation: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    *,
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
    path_length: int | None = None,
    sgx_extension: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
    else:
        builder = builder.add_extension(_key_usage(sign=True, non_repudiation=True), critical=True)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if sgx_extension:
        ext = x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_EXTENSION_OID), _sgx_extension())
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, *, now: int, number: int) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(datetime.datetime.fromtimestamp(now - DAY, tz=datetime.UTC))
        .next_update(datetime.datetime.fromtimestamp(now + 30 * DAY, tz=datetime.UTC))
        .add_extension(x509.CRLNumber(number), critical=False)  # dcap-qvl cannot parse a CRL without extensions
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 as the 64-byte r‖s that quotes and collateral carry (not DER)."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The public key as X‖Y (64 bytes, without the 0x04 prefix)."""
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _rfc3339(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check48(value: bytes, what: str) -> bytes:
    if len(value) != 48:
        raise ValueError(f"{what} must be 48 bytes, got {len(value)}")
    return bytes(value)


# --- the authority -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    keys: dict[str, ec.EllipticCurvePrivateKey]
    certs: dict[str, x509.Certificate]

    @classmethod
    def generate(cls) -> _Pki:
        keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in _KEY_NAMES}
        root = _certificate(
            subject="MRMarket Dev SGX Root CA", key=keys["root"], issuer=None, issuer_key=keys["root"], ca=True
        )
        pck_ca = _certificate(
            subject="MRMarket Dev SGX PCK Platform CA",
            key=keys["pck_ca"],
            issuer=root,
            issuer_key=keys["root"],
            ca=True,
            path_length=0,
        )
        pck = _certificate(
            subject="MRMarket Dev SGX PCK Certificate",
            key=keys["pck"],
            issuer=pck_ca,
            issuer_key=keys["pck_ca"],
            ca=False,
            sgx_extension=True,
        )
        tcb = _certificate(
            subject="MRMarket Dev SGX TCB Signing", key=keys["tcb"], issuer=root, issuer_key=keys["root"], ca=False
        )
        return cls(keys=keys, certs={"root": root, "pck_ca": pck_ca, "pck": pck, "tcb": tcb})


class DevQuoteAuthority:
    """Issues DCAP v4 TDX quotes and their collateral under a root CA it owns. Thread-safe once built."""

    def __init__(self, pki: _Pki) -> None:
        self._keys = pki.keys
        self._certs = pki.certs
        self._attestation_point = _point(self._keys["attestation"])
        chain = "".join(_pem(self._certs[name]) for name in ("pck", "pck_ca", "root"))
        self._certification_data = self._make_certification_data(chain.encode() + b"\0")

    # construction ---------------------------------------------------------------------------------------------

    @classmethod
    def ephemeral(cls) -> DevQuoteAuthority:
        """A fresh authority held in memory only (tests)."""
        return cls(_Pki.generate())

    @classmethod
    def load_or_create(cls, directory: Path) -> DevQuoteAuthority:
        """The authority whose keys and certificates are stored as PEM files in `directory`, created on first use.

        Several processes may call this at once: creation happens under an exclusive lock on
        `directory/.lock`, so they all end up with the same root. Private keys are written with mode 0600.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory / ".lock"):
            if all((directory / f"{name}_key.pem").exists() for name in _KEY_NAMES):
                return cls(_load(directory))
            pki = _Pki.generate()
            _store(directory, pki)
            return cls(pki)

    # public API -----------------------------------------------------------------------------------------------

    @property
    def root_ca_der(self) -> bytes:
        """The root CA certificate in DER, as `dcap_qvl.verify_with_root_ca` takes it."""
        return self._certs["root"].public_bytes(serialization.Encoding.DER)

    @property
    def root_ca_pem(self) -> str:
        return _pem(self._certs["root"])

    def quote(
        self,
        report_data: bytes,
        *,
        mrtd: bytes,
        rtmrs: Sequence[bytes] = (b"\0" * 48,) * 4,
        debug: bool = False,
        tcb: str = "UpToDate",
    ) -> bytes:
        """A signed TDX quote over this TD report; `report_data` (≤ 64 bytes) is zero-padded to 64."""
        if len(report_data) > 64:
            raise ValueError(f"report_data must be at most 64 bytes, got {len(report_data)}")
        if len(rtmrs) != 4:
            raise ValueError("rtmrs must hold exactly four 48-byte values")
        if tcb not in TEE_TCB_SVNS:
            raise ValueError(f"tcb must be one of {sorted(TEE_TCB_SVNS)}")
        td_attributes = bytearray(TD_ATTR_SEPT_VE_DISABLE)
        if debug:
            td_attributes[0] |= 0x01
        header = struct.pack(
            "<HHIHH16s20s",
            QUOTE_VERSION,
            ATTESTATION_KEY_TYPE_ECDSA_P256,
            TEE_TYPE_TDX,
            QE_SVN,
            PCE_SVN,
            QE_VENDOR_ID,
            USER_DATA,
        )
        body = b"".join(
            [
                TEE_TCB_SVNS[tcb],
                MRSEAM,
                bytes(48),  # MRSIGNERSEAM: zero for Intel's own TDX module
                bytes(8),  # SEAM attributes
                bytes(td_attributes),
                XFAM,
                _check48(mrtd, "mrtd"),
                bytes(48 * 3),  # MRCONFIGID, MROWNER, MROWNERCONFIG
                *(_check48(r, f"rtmr{i}") for i, r in enumerate(rtmrs)),
                report_data.ljust(64, b"\0"),
            ]
        )
        signed = header + body
        assert len(signed) == 632
        signature_data = _sign_raw(self._keys["attestation"], signed) + self._attestation_point
        signature_data += self._certification_data
        return signed + struct.pack("<I", len(signature_data)) + signature_data

    def collateral_json(self, *, now: int) -> str:
        """Collateral valid around `now`: issued a day before, next update in 30 days (CRLs likewise)."""
        issue, next_update = _rfc3339(now - DAY), _rfc3339(now + 30 * DAY)
        tcb_info = json.dumps(self._tcb_info(issue, next_update), separators=(",", ":"))
        qe_identity = json.dumps(self._qe_identity(issue, next_update), separators=(",", ":"))
        tcb_chain = _pem(self._certs["tcb"]) + _pem(self._certs["root"])
        return json.dumps(
            {
                "pck_crl_issuer_chain": _pem(self._certs["pck_ca"]) + _pem(self._certs["root"]),
                "root_ca_crl": _crl(self._certs["root"], self._keys["root"], now=now, number=1).hex(),
                "pck_crl": _crl(self._certs["pck_ca"], self._keys["pck_ca"], now=now, number=1).hex(),
                "tcb_info_issuer_chain": tcb_chain,
                "tcb_info": tcb_info,
                "tcb_info_signature": _sign_raw(self._keys["tcb"], tcb_info.encode()).hex(),
                "qe_identity_issuer_chain": tcb_chain,
                "qe_identity": qe_identity,
                "qe_identity_signature": _sign_raw(self._keys["tcb"], qe_identity.encode()).hex(),
            }
        )

    # internals ------------------------------------------------------------------------------------------------

    def _make_certification_data(self, pem_chain: bytes) -> bytes:
        qe_report = b"".join(
            [
                CPU_SVN,
                struct.pack("<I", 0),  # MISCSELECT
                bytes(28),
                QE_ATTRIBUTES,
                QE_MRENCLAVE,
                bytes(32),
                QE_MRSIGNER,
                bytes(96),
                struct.pack("<HH", QE_ISVPRODID, QE_SVN),
                bytes(60),
                hashlib.sha256(self._attestation_point + QE_AUTH_DATA).digest().ljust(64, b"\0"),
            ]
        )
        assert len(qe_report) == 384
        inner = (
            qe_report
            + _sign_raw(self._keys["pck"], qe_report)
            + struct.pack("<H", len(QE_AUTH_DATA))
            + QE_AUTH_DATA
            + struct.pack("<HI", CERT_DATA_PCK_CHAIN, len(pem_chain))
            + pem_chain
        )
        return struct.pack("<HI", CERT_DATA_QE_REPORT, len(inner)) + inner

    def _tcb_info(self, issue: str, next_update: str) -> dict:
        zero_mrsigner = "00" * 48
        sgx_components = [{"svn": svn} for svn in CPU_SVN]

        def level(status: str, advisories: list[str]) -> dict:
            tdx = _LEVEL_TDX_COMPONENTS[status]
            entry: dict[str, object] = {
                "tcb": {
                    "sgxtcbcomponents": sgx_components,
                    "pcesvn": PCE_SVN,
                    "tdxtcbcomponents": [{"svn": svn} for svn in tdx + [0] * (16 - len(tdx))],
                },
                "tcbDate": "2024-03-13T00:00:00Z" if status == "UpToDate" else "2023-08-09T00:00:00Z",
                "tcbStatus": status,
            }
            if advisories:
                entry["advisoryIDs"] = advisories
            return entry

        return {
            "id": "TDX",
            "version": 3,
            "issueDate": issue,
            "nextUpdate": next_update,
            "fmspc": FMSPC.hex().upper(),
            "pceId": PCE_ID.hex(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tdxModule": {"mrsigner": zero_mrsigner, "attributes": "00" * 8, "attributesMask": "FF" * 8},
            "tdxModuleIdentities": [
                {
                    "id": "TDX_01",
                    "mrsigner": zero_mrsigner,
                    "attributes": "00" * 8,
                    "attributesMask": "FF" * 8,
                    "tcbLevels": [{"tcb": {"isvsvn": 1}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}],
                }
            ],
            "tcbLevels": [level("UpToDate", []), level("OutOfDate", OUT_OF_DATE_ADVISORIES)],
        }

    def _qe_identity(self, issue: str, next_update: str) -> dict:
        return {
            "id": "TD_QE",
            "version": 2,
            "issueDate": issue,
            "nextUpdate": next_update,
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": QE_ATTRIBUTES.hex().upper(),
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": QE_MRSIGNER.hex().upper(),
            "isvprodid": QE_ISVPRODID,
            "tcbLevels": [{"tcb": {"isvsvn": QE_SVN}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}],
        }


# --- persistence ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed it; never widen a key beyond `mode`
    os.replace(tmp, path)


def _store(directory: Path, pki: _Pki) -> None:
    for name in _CERT_NAMES:
        _write(directory / f"{name}_cert.pem", pki.certs[name].public_bytes(serialization.Encoding.PEM), 0o644)
    for name in _KEY_NAMES:  # keys last: their presence marks a complete directory
        pem = pki.keys[name].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(directory / f"{name}_key.pem", pem, 0o600)


def _load(directory: Path) -> _Pki:
    keys: dict[str, ec.EllipticCurvePrivateKey] = {}
    for name in _KEY_NAMES:
        key = serialization.load_pem_private_key((directory / f"{name}_key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{name}_key.pem is not an EC private key")
        keys[name] = key
    certs = {
        name: x509.load_pem_x509_certificate((directory / f"{name}_cert.pem").read_bytes()) for name in _CERT_NAMES
    }
    return _Pki(keys=keys, certs=certs)

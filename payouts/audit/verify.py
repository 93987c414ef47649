"""`python -m payouts.audit verify`: check one epoch of a campaign against the chain, from public data only
(docs/scoring.md, "Verifying an epoch against the chain").

What the escrow holds for an epoch (`ResultsRecorded`, `PayoutPublished`, every `Distributed` and `Claimed`, and
the fee in `params()`) is read with web3; the three published documents, every source report the inputs name and
the proof of execution of each report's job are downloaded from the artifacts base (`--artifacts`, else the
on-chain bundle URI without the bundle's public path). Then every digest is compared with the one that names it,
every report's signature and chain link is checked and tied to an accepted attestation, the bundle and manifest are
rebuilt from the inputs byte for byte (`payouts.audit.recompute`), and each payment on chain is matched with its
leaves.

The shape: `ChainReader` and `HttpFetcher` are the only I/O; `gather` uses them to collect the `Evidence`;
`check_epoch` is pure and turns chain facts and evidence into `Check` lines. A failure is a line, never an
exception, so one broken document does not hide the others' problems; only a chain or server that cannot be
reached (`Unavailable`) or a bad argument (`UsageError`) stops the command, with exit status 2.

No Django, no database, no settings: this module imports `payouts.domain`, `payouts.audit`, `wire` and `contracts`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import httpx
from web3 import Web3
from web3.exceptions import Web3Exception

from contracts import load_artifact
from payouts.audit.recompute import InputsRefused, recompute_bytes, software_note
from payouts.domain.bundle import Software
from payouts.domain.epochs import CampaignTerms as EpochTerms
from payouts.domain.merkle import MerkleError, PayoutLeaf, PayoutTree
from wire.canonical import digest, parse
from wire.errors import WireError
from wire.keys import verify_signature
from wire.reports import SignedReport, validate_report
from wire.schema import ID_RE

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2
PROOF_SCHEMA = "mrmarket.proof-of-execution/v1"
MAX_DOCUMENT_BYTES = 256 * 2**20  # a report of MAX_BOOK_SAMPLES × MAX_RESTING orders stays far below this
HTTP_TIMEOUT_SECONDS = 30
FEE_DENOMINATOR = 10_000  # fee_bps is in basis points of the published total (Campaign.publishPayout)
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_UINT_RE = re.compile(r"0|[1-9][0-9]*")
_SHOWN_UNPAID = 20  # unpaid leaf indices listed before "…"


class UsageError(ValueError):
    """An argument the command cannot use (not an address, not an http(s) URL)."""

    code = "usage"


class Unavailable(RuntimeError):
    """The chain or the artifacts server cannot be reached, or answers with a server error."""

    code = "unavailable"


# ---------------------------------------------------------------------------------------------- what is checked


@dataclass(frozen=True)
class Check:
    """One line of the verdict: `ok`, `FAIL` or `note` (said, but neither passing nor failing anything)."""

    status: str
    text: str

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        return f"{self.status} {self.text}"


def ok(text: str) -> Check:
    return Check("ok", text)


def fail(text: str) -> Check:
    return Check("FAIL", text)


def note(text: str) -> Check:
    return Check("note", text)


@dataclass(frozen=True)
class CampaignTerms:
    """The parts of `params()` an epoch's documents are checked against."""

    start: int  # seconds
    end: int
    epoch_length: int
    fee_bps: int
    metadata_hash: str  # 0x + 64 hex
    budget: int = 0  # the campaign's whole budget, base units

    def epoch_window_ms(self, epoch: int) -> tuple[int, int]:
        """`[start_ms, end_ms)` of an epoch as the escrow computes it (Campaign._epochEnd)."""
        start = self.start + epoch * self.epoch_length
        return start * 1000, min(start + self.epoch_length, self.end) * 1000


@dataclass(frozen=True)
class ResultsRecord:
    results_hash: str  # 64 hex, no 0x
    uri: str


@dataclass(frozen=True)
class PayoutRecord:
    merkle_root: str  # 0x + 64 hex
    manifest_hash: str  # 64 hex, no 0x
    total: int
    fee: int


@dataclass(frozen=True)
class ClaimEvent:
    index: int
    account: str  # lower-case
    amount: int
    tx: str


@dataclass(frozen=True)
class DistributionEvent:
    first_index: int
    count: int
    amount: int
    tx: str


@dataclass(frozen=True)
class ChainEpoch:
    """Everything the escrow says about one epoch."""

    chain_id: int
    campaign: str  # lower-case 0x address
    epoch: int
    terms: CampaignTerms
    results: tuple[ResultsRecord, ...]
    payouts: tuple[PayoutRecord, ...]
    claims: tuple[ClaimEvent, ...]
    distributions: tuple[DistributionEvent, ...]


@dataclass(frozen=True)
class Download:
    """One public URL and what it answered: the body (None when it answered 4xx) and the HTTP status."""

    url: str
    body: bytes | None
    status: int

    def absent(self, what: str) -> str:
        return f"{what} is not served at {self.url} (HTTP {self.status})"


@dataclass(frozen=True)
class Evidence:
    """The downloaded documents: the epoch's three, each source report by digest, each job's proof by job id."""

    inputs: Download
    bundle: Download
    manifest: Download
    reports: dict[str, Download] = field(default_factory=dict)
    proofs: dict[str, Download] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- public URLs


def epoch_path(chain_id: int, campaign: str, epoch: int, kind: str) -> str:
    """The public path of an epoch document, as the oracle serves it (`payouts.selectors.artifact_path`)."""
    return f"/api/v1/payouts/{chain_id}/{campaign.lower()}/{epoch}/{kind}.json"


def report_url(base: str, report_digest: str) -> str:
    return f"{base}/api/v1/payouts/reports/{report_digest}.json"


def proof_url(base: str, job_id: str) -> str:
    return f"{base}/api/v1/attestation/proofs/{quote(job_id, safe='')}"


def artifacts_base(uri: str, *, expected_path: str) -> str:
    """Where the documents are served, from the on-chain bundle URI: the URI without the bundle's public path (the
    oracle's `ORACLE_PUBLIC_BASE_URL`, which may carry a path prefix), else its scheme and host (and port)."""
    if uri.endswith(expected_path):
        return checked_base(uri[: -len(expected_path)])
    parts = urlsplit(uri)
    return checked_base(f"{parts.scheme}://{parts.netloc}")


def checked_base(url: str) -> str:
    """An artifacts base URL without its trailing slash; raises `UsageError` unless it is an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"{url!r} is not an http(s) base URL")
    return url.rstrip("/")


# ---------------------------------------------------------------------------------------------- I/O: the chain


def _hex(value: bytes) -> str:
    return bytes(value).hex()


def _tx(event: Any) -> str:
    return "0x" + _hex(event["transactionHash"])


class ChainReader:
    """The escrow's events and parameters for one epoch, over JSON-RPC (web3.py)."""

    def __init__(self, rpc_url: str, *, from_block: int = 0) -> None:
        if urlsplit(rpc_url).scheme not in ("http", "https"):
            raise UsageError(f"--rpc {rpc_url!r} is not an http(s) URL")
        self._w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": HTTP_TIMEOUT_SECONDS}))
        self._rpc_url = rpc_url
        self._from_block = from_block

    def read(self, campaign: str, epoch: int) -> ChainEpoch:
        """Raises `UsageError` (not an address, no contract there) and `Unavailable` (the node cannot be reached
        or the call fails)."""
        if not _ADDRESS_RE.fullmatch(campaign):
            raise UsageError(f"--campaign {campaign!r} is not a 0x address")
        address = Web3.to_checksum_address(campaign)
        try:
            chain_id = int(self._w3.eth.chain_id)
            code = self._w3.eth.get_code(address)
        except (Web3Exception, OSError, ValueError) as exc:
            raise Unavailable(f"cannot reach the chain at {self._rpc_url}: {type(exc).__name__}") from None
        if not code:
            raise UsageError(f"no contract at {campaign} on chain {chain_id}")
        try:
            contract = self._w3.eth.contract(address=address, abi=load_artifact("Campaign").abi)
            params = contract.functions.params().call()
            events = contract.events
            found = {
                name: list(
                    getattr(events, name)().get_logs(from_block=self._from_block, argument_filters={"epoch": epoch})
                )
                for name in ("ResultsRecorded", "PayoutPublished", "Claimed", "Distributed")
            }
        except (Web3Exception, OSError, ValueError) as exc:
            raise Unavailable(f"cannot read campaign {campaign} at {self._rpc_url}: {type(exc).__name__}") from None
        return ChainEpoch(
            chain_id=chain_id,
            campaign=campaign.lower(),
            epoch=epoch,
            terms=CampaignTerms(
                start=int(params[5]),
                end=int(params[6]),
                epoch_length=int(params[7]),
                fee_bps=int(params[10]),
                metadata_hash="0x" + _hex(params[11]),
                budget=int(params[9]),
            ),
            results=tuple(
                ResultsRecord(results_hash=_hex(e["args"]["resultsHash"]), uri=str(e["args"]["uri"]))
                for e in found["ResultsRecorded"]
            ),
            payouts=tuple(
                PayoutRecord(
                    merkle_root="0x" + _hex(e["args"]["merkleRoot"]),
                    manifest_hash=_hex(e["args"]["manifestHash"]),
                    total=int(e["args"]["total"]),
                    fee=int(e["args"]["fee"]),
                )
                for e in found["PayoutPublished"]
            ),
            claims=tuple(
                ClaimEvent(
                    index=int(e["args"]["index"]),
                    account=str(e["args"]["account"]).lower(),
                    amount=int(e["args"]["amount"]),
                    tx=_tx(e),
                )
                for e in found["Claimed"]
            ),
            distributions=tuple(
                DistributionEvent(
                    first_index=int(e["args"]["firstIndex"]),
                    count=int(e["args"]["count"]),
                    amount=int(e["args"]["amount"]),
                    tx=_tx(e),
                )
                for e in found["Distributed"]
            ),
        )


# ---------------------------------------------------------------------------------------------- I/O: HTTP


class HttpFetcher:
    """GET of public documents: the body on 200, none on a 4xx (the check names it), `Unavailable` otherwise."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=True)

    def get(self, url: str) -> Download:
        try:
            with self._client.stream("GET", url) as response:
                if 400 <= response.status_code < 500:
                    return Download(url=url, body=None, status=response.status_code)
                if response.status_code != 200:
                    raise Unavailable(f"{url} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise Unavailable(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
                return Download(url=url, body=bytes(body), status=200)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot download {url}: {type(exc).__name__}") from None

    def close(self) -> None:
        self._client.close()


def _json(raw: bytes | None) -> Any:
    """The parsed document, or None when absent or not JSON (the checks say which)."""
    if raw is None:
        return None
    try:
        return parse(raw)
    except (WireError, UnicodeDecodeError):
        return None


def source_reports(inputs: Any) -> list[str]:
    """The report digests the inputs name (only well-formed ones: anything else is the schema's refusal)."""
    listed = inputs.get("source_reports") if isinstance(inputs, dict) else None
    if not isinstance(listed, list):
        return []
    return list(dict.fromkeys(d for d in listed if isinstance(d, str) and _DIGEST_RE.fullmatch(d)))


def report_job(envelope: Any) -> str | None:
    report = envelope.get("report") if isinstance(envelope, dict) else None
    job_id = report.get("job_id") if isinstance(report, dict) else None
    return job_id if isinstance(job_id, str) and ID_RE.fullmatch(job_id) else None


def gather(chain: ChainEpoch, fetcher: HttpFetcher, *, base: str) -> Evidence:
    """Download the epoch's documents, the source reports the inputs name, and each of their jobs' proofs."""
    urls = {kind: base + epoch_path(chain.chain_id, chain.campaign, chain.epoch, kind) for kind in _KINDS}
    inputs, bundle, manifest = (fetcher.get(urls[kind]) for kind in _KINDS)
    reports = {d: fetcher.get(report_url(base, d)) for d in source_reports(_json(inputs.body))}
    jobs = dict.fromkeys(job for r in reports.values() if (job := report_job(_json(r.body))) is not None)
    proofs = {job: fetcher.get(proof_url(base, job)) for job in jobs}
    return Evidence(inputs=inputs, bundle=bundle, manifest=manifest, reports=reports, proofs=proofs)


_KINDS = ("inputs", "bundle", "manifest")


# ---------------------------------------------------------------------------------------------- pure checks


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def _document(download: Download, name: str) -> tuple[bytes | None, Any, list[Check]]:
    """The raw bytes and parsed value of a downloaded document, with a FAIL line when it is absent or not JSON."""
    if download.body is None:
        return None, None, [fail(download.absent(name))]
    value = _json(download.body)
    if value is None:
        return download.body, None, [fail(f"{name} at {download.url} is not JSON (floats and repeated keys refused)")]
    return download.body, value, []


def check_results_on_chain(chain: ChainEpoch) -> Iterator[Check]:
    path = epoch_path(chain.chain_id, chain.campaign, chain.epoch, "bundle")
    if not chain.results:
        yield fail(f"chain: no ResultsRecorded for epoch {chain.epoch}: the results are not recorded")
        return
    if len(chain.results) > 1:
        yield fail(
            f"chain: {len(chain.results)} ResultsRecorded events for epoch {chain.epoch} (the escrow allows one)"
        )
    record = chain.results[0]
    yield ok(f"chain: epoch {chain.epoch} recorded, resultsHash 0x{record.results_hash}")
    if record.uri.endswith(path):
        yield ok(f"chain: the results uri {record.uri} names this epoch's bundle")
    else:
        yield fail(f"chain: the results uri {record.uri!r} does not end with this epoch's bundle path {path}")


def _digest_line(name: str, found: str, expected: str, against: str) -> Check:
    if found == expected:
        return ok(f"{name}: SHA-256 {found} == {against}")
    return fail(f"{name}: SHA-256 is {found}, {against} is {expected}")


def check_identity(chain: ChainEpoch, bundle: Any) -> Check:
    """The bundle names this campaign and this epoch, with the window and metadata the escrow holds."""
    start_ms, end_ms = chain.terms.epoch_window_ms(chain.epoch)
    expected = {
        "campaign.chain_id": chain.chain_id,
        "campaign.address": chain.campaign,
        "campaign.metadata_hash": chain.terms.metadata_hash,
        "epoch.index": chain.epoch,
        "epoch.start_ms": start_ms,
        "epoch.end_ms": end_ms,
    }
    for key, value in expected.items():
        found = _get(bundle, *key.split("."))
        if found != value:
            return fail(f"bundle.{key}: {found!r}, the chain says {value!r}")
    return ok(f"bundle: names campaign {chain.chain_id}/{chain.campaign}, epoch {chain.epoch} [{start_ms}, {end_ms})")


def check_budget(chain: ChainEpoch, bundle: Any) -> Check:
    """The bundle pays out the whole epoch: its `epoch_budget` is the largest total the escrow accepts for the
    epoch (`total + fee ≤ epochBudget`), so nothing is held back to go back to the creator."""
    terms = chain.terms
    try:
        payable = EpochTerms(
            start=terms.start,
            end=terms.end,
            epoch_seconds=terms.epoch_length,
            budget=terms.budget,
            fee_bps=terms.fee_bps,
        ).epoch_payable(chain.epoch)
    except ValueError as exc:
        return fail(f"chain: the escrow's parameters give no budget for epoch {chain.epoch}: {exc}")
    found = _get(bundle, "parameters", "epoch_budget")
    if found == str(payable):
        return ok(f"bundle.parameters.epoch_budget {found} == what the escrow lets epoch {chain.epoch} pay")
    return fail(f"bundle.parameters.epoch_budget is {found!r}, the escrow lets epoch {chain.epoch} pay {payable}")


def check_bundle(chain: ChainEpoch, evidence: Evidence) -> Iterator[Check]:
    inputs_raw, _, problems = _document(evidence.inputs, "inputs")
    yield from problems
    bundle_raw, bundle, problems = _document(evidence.bundle, "bundle")
    yield from problems
    if bundle_raw is not None and chain.results:
        yield _digest_line("bundle", _sha256(bundle_raw), chain.results[0].results_hash, "the on-chain resultsHash")
    if bundle is None:
        return
    yield check_identity(chain, bundle)
    yield check_budget(chain, bundle)
    if inputs_raw is not None:
        yield _digest_line("inputs", _sha256(inputs_raw), str(_get(bundle, "inputs_digest")), "bundle.inputs_digest")


def manifest_leaves(manifest: Any) -> list[PayoutLeaf] | Check:
    """The manifest's leaves, or the FAIL line naming the first malformed one."""
    leaves = _get(manifest, "leaves")
    if not isinstance(leaves, list):
        return fail("manifest.leaves: is not an array")
    out: list[PayoutLeaf] = []
    for i, leaf in enumerate(leaves):
        index, account, amount = _get(leaf, "index"), _get(leaf, "account"), _get(leaf, "amount")
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not isinstance(account, str)
            or not _ADDRESS_RE.fullmatch(account)
            or not isinstance(amount, str)
            or not _UINT_RE.fullmatch(amount)
        ):
            return fail(f"manifest.leaves[{i}]: {leaf!r} is not an {{index, account, amount}} leaf")
        out.append(PayoutLeaf(index, account, int(amount)))
    return out


def check_manifest(chain: ChainEpoch, evidence: Evidence) -> Iterator[Check]:
    manifest_raw, manifest, problems = _document(evidence.manifest, "manifest")
    yield from problems
    payout = chain.payouts[0] if chain.payouts else None
    if payout is None and _get(manifest, "total") == "0":
        yield note(f"payout: nobody is paid in epoch {chain.epoch}; such a manifest is never published on chain")
    elif payout is None:
        yield note(f"payout: not published yet for epoch {chain.epoch}; the manifest is checked against the bundle")
    elif len(chain.payouts) > 1:
        yield fail(
            f"chain: {len(chain.payouts)} PayoutPublished events for epoch {chain.epoch} (the escrow allows one)"
        )
    if manifest_raw is not None and payout is not None:
        yield _digest_line("manifest", _sha256(manifest_raw), payout.manifest_hash, "the on-chain manifestHash")
    if manifest is None:
        return
    if evidence.bundle.body is not None:
        bundle_digest = _sha256(evidence.bundle.body)
        found = _get(manifest, "results_digest")
        if found == bundle_digest:
            yield ok(f"manifest.results_digest {found} == SHA-256 of the bundle")
        else:
            yield fail(f"manifest.results_digest is {found}, SHA-256 of the bundle is {bundle_digest}")
    yield from _check_tree(manifest, payout)
    if payout is not None:
        yield from _check_totals(chain, manifest, payout)


def _check_tree(manifest: Any, payout: PayoutRecord | None) -> Iterator[Check]:
    root = _get(manifest, "merkle_root")
    if payout is not None:
        if root == payout.merkle_root:
            yield ok(f"manifest.merkle_root {root} == the on-chain merkleRoot")
        else:
            yield fail(f"manifest.merkle_root is {root}, the on-chain merkleRoot is {payout.merkle_root}")
    leaves = manifest_leaves(manifest)
    if isinstance(leaves, Check):
        yield leaves
        return
    total = _get(manifest, "total")
    if str(sum(leaf.amount for leaf in leaves)) != total:
        yield fail(f"manifest.total {total!r} is not the sum of its leaves, {sum(leaf.amount for leaf in leaves)}")
    if not leaves:
        if root is not None:
            yield fail(f"manifest.merkle_root is {root} with no leaves (expected null)")
        return
    try:
        rebuilt = "0x" + PayoutTree(leaves).root.hex()
    except MerkleError as exc:
        yield fail(f"manifest.leaves: no payout tree can be built: {exc}")
        return
    if rebuilt == root:
        yield ok(f"manifest: the {len(leaves)} leaves rebuild merkle_root {root}")
    else:
        yield fail(f"manifest: the {len(leaves)} leaves rebuild root {rebuilt}, manifest.merkle_root is {root}")


def _check_totals(chain: ChainEpoch, manifest: Any, payout: PayoutRecord) -> Iterator[Check]:
    total = _get(manifest, "total")
    if total == str(payout.total):
        yield ok(f"manifest.total {total} == the on-chain total")
    else:
        yield fail(f"manifest.total is {total!r}, the on-chain total is {payout.total}")
    fee = payout.total * chain.terms.fee_bps // FEE_DENOMINATOR
    if payout.fee == fee:
        yield ok(f"chain: fee {payout.fee} == total × {chain.terms.fee_bps} bps")
    else:
        yield fail(f"chain: fee is {payout.fee}, total {payout.total} × {chain.terms.fee_bps} bps is {fee}")


# ---------------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class _Report:
    digest: str
    signed: SignedReport
    job_id: str
    sequence: int
    signing_key: str


def _read_report(report_digest: str, download: Download | None) -> tuple[_Report | None, list[Check]]:
    """The envelope served for a digest, with its digest, schema and signature checked."""
    name = f"report {report_digest}"
    if download is None or download.body is None:
        return None, [fail(download.absent(name) if download else f"{name}: not downloaded")]
    try:
        signed = SignedReport.from_json(parse(download.body))
        validate_report(signed.report)
    except (WireError, UnicodeDecodeError) as exc:
        return None, [fail(f"{name}: not a valid report envelope: {exc}")]
    problems: list[Check] = []
    if signed.digest != report_digest:
        problems.append(fail(f"{name}: the envelope served carries digest {signed.digest}"))
    actual = digest(signed.report)
    if actual != signed.digest:
        problems.append(fail(f"{name}: SHA-256 of the report's canonical form is {actual}, not {signed.digest}"))
    key = signed.report["executor"]["signing_key"]
    try:
        verify_signature(key, bytes.fromhex(signed.digest), signed.signature)
    except WireError:
        problems.append(fail(f"{name}: the Ed25519 signature does not verify under its signing key {key}"))
    report = _Report(report_digest, signed, signed.report["job_id"], signed.sequence, key)
    return report, problems


@dataclass(frozen=True)
class _Proof:
    job_id: str
    signing_key: Any
    record: Any
    hardware_attested: Any
    job_spec_digest: Any
    chain: dict[int, dict[str, Any]]  # sequence → {digest, window_start_ms, window_end_ms}


def _read_proof(job_id: str, download: Download | None) -> tuple[_Proof | None, list[Check]]:
    name = f"proof of execution of job {job_id}"
    if download is None or download.body is None:
        where = download.absent(name) if download else f"{name}: not downloaded"
        return None, [fail(f"{where}: its reports' key links to no accepted attestation")]
    served = _json(download.body)
    proof = _get(served, "proof")
    if not isinstance(proof, dict):
        return None, [fail(f"{name} at {download.url} is not a {{proof, digest}} document")]
    problems: list[Check] = []
    try:
        actual = digest(proof)
    except WireError as exc:
        return None, [fail(f"{name}: not canonical JSON: {exc}")]
    if _get(served, "digest") != actual:
        problems.append(fail(f"{name}: its digest is {_get(served, 'digest')!r}, SHA-256 of the proof is {actual}"))
    if proof.get("schema") != PROOF_SCHEMA or proof.get("job_id") != job_id:
        problems.append(fail(f"{name}: is not a {PROOF_SCHEMA} document of job {job_id}"))
    entries = proof.get("reports")
    chain: dict[int, dict[str, Any]] = {}
    if isinstance(entries, list):
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("sequence") != position:
                problems.append(fail(f"{name}: reports[{position}] is not sequence {position} (the chain has a gap)"))
                break
            chain[position] = entry
    else:
        problems.append(fail(f"{name}: has no reports list"))
    attestation = proof.get("attestation")
    return _Proof(
        job_id=job_id,
        signing_key=_get(proof, "executor", "signing_key"),
        record=_get(attestation, "record"),
        hardware_attested=_get(attestation, "hardware_attested"),
        job_spec_digest=proof.get("job_spec_digest"),
        chain=chain,
    ), problems


def _check_attestation(proof: _Proof, *, require_hardware: bool) -> Check:
    name = f"job {proof.job_id}"
    if not isinstance(proof.record, int) or isinstance(proof.record, bool):
        return fail(f"{name}: the proof of execution names no attestation record: the key links to no attestation")
    key = f"{str(proof.signing_key)[:16]}…"
    if proof.hardware_attested is True:
        return ok(f"{name}: key {key} bound by accepted attestation record {proof.record}, hardware-attested")
    if require_hardware:
        return fail(
            f"{name}: key {key} bound by attestation record {proof.record}, not hardware-attested (the dev quote "
            "authority) and --require-hardware is set"
        )
    return ok(
        f"{name}: key {key} bound by accepted attestation record {proof.record}, not hardware-attested (the dev "
        "quote authority)"
    )


def _check_link(report: _Report, proof: _Proof) -> list[Check]:
    """The report is the one the proof lists at its sequence, under the proof's key, linked to the one before."""
    name = f"report {report.digest} (job {report.job_id}, sequence {report.sequence})"
    if report.signing_key != proof.signing_key:
        return [
            fail(
                f"{name}: signed by key {report.signing_key}, the proof of execution names key {proof.signing_key}: "
                "the key links to no accepted attestation"
            )
        ]
    problems: list[Check] = []
    r = report.signed.report
    listed = proof.chain.get(report.sequence)
    if listed is None or listed.get("digest") != report.digest:
        found = "nothing" if listed is None else listed.get("digest")
        problems.append(fail(f"{name}: the proof of execution lists {found} at sequence {report.sequence}"))
    if r["job_spec_digest"] != proof.job_spec_digest:
        problems.append(fail(f"{name}: job_spec_digest {r['job_spec_digest']}, the proof's is {proof.job_spec_digest}"))
    if report.sequence > 0:
        before = proof.chain.get(report.sequence - 1)
        if before is None or r["prev_digest"] != before.get("digest"):
            expected = "nothing" if before is None else before.get("digest")
            problems.append(
                fail(
                    f"{name}: prev_digest {r['prev_digest']} does not link to report "
                    f"{report.sequence - 1} of the chain ({expected})"
                )
            )
        elif r["window_start_ms"] != before.get("window_end_ms"):
            problems.append(fail(f"{name}: its window does not start where report {report.sequence - 1}'s ended"))
    return problems


def check_reports(evidence: Evidence, *, require_hardware: bool) -> Iterator[Check]:
    digests = source_reports(_json(evidence.inputs.body))
    by_job: dict[str, list[_Report]] = {}
    for report_digest in digests:
        report, problems = _read_report(report_digest, evidence.reports.get(report_digest))
        yield from problems
        if report is not None:
            by_job.setdefault(report.job_id, []).append(report)
            if not problems:
                yield ok(
                    f"report {report_digest}: digest and Ed25519 signature (job {report.job_id}, sequence "
                    f"{report.sequence})"
                )
    for job_id, reports in by_job.items():
        proof, problems = _read_proof(job_id, evidence.proofs.get(job_id))
        yield from problems
        if proof is None:
            continue
        yield _check_attestation(proof, require_hardware=require_hardware)
        linked = 0
        for report in sorted(reports, key=lambda r: r.sequence):
            link_problems = _check_link(report, proof)
            yield from link_problems
            linked += not link_problems
        if linked == len(reports):
            yield ok(f"job {job_id}: {linked} reports listed in its proof of execution, each linked to the one before")
    if not digests:
        yield note("inputs: no source reports named")


# ---------------------------------------------------------------------------------------------- recompute, payments


def check_recompute(evidence: Evidence, *, running: Software) -> Iterator[Check]:
    inputs_raw, bundle_raw, manifest_raw = evidence.inputs.body, evidence.bundle.body, evidence.manifest.body
    if inputs_raw is None or bundle_raw is None or manifest_raw is None:
        yield fail("recompute: not possible without the inputs, the bundle and the manifest")
        return
    try:
        found = recompute_bytes(inputs_raw, bundle_raw, manifest_raw)
    except InputsRefused as exc:
        yield fail(f"recompute: refused: {exc}")
        return
    for difference in found.differences:
        yield fail(f"recompute: differs: {difference}")
    if not found.differences:
        yield ok(
            f"recompute: bundle and manifest rebuilt from the inputs byte for byte; "
            f"{software_note(found.software, running)}"
        )


def check_payments(chain: ChainEpoch, evidence: Evidence) -> Iterator[Check]:
    if not chain.payouts:
        if chain.claims or chain.distributions:
            yield fail("chain: payments without a published payout")
        return
    payout = chain.payouts[0]
    leaves = manifest_leaves(_json(evidence.manifest.body))
    if isinstance(leaves, Check):
        yield fail(f"payments: cannot be matched with the manifest: {leaves.text}")
        return
    by_index = {leaf.index: leaf for leaf in leaves}
    paid_by: dict[int, str] = {}
    problems: list[Check] = []
    for claim in chain.claims:
        leaf = by_index.get(claim.index)
        if leaf is None:
            problems.append(fail(f"claim (tx {claim.tx}): index {claim.index} is not a leaf of the manifest"))
        elif (leaf.account.lower(), leaf.amount) != (claim.account, claim.amount):
            problems.append(
                fail(
                    f"claim of leaf {claim.index} (tx {claim.tx}): paid {claim.amount} to "
                    f"{claim.account}, "
                    f"the leaf is {leaf.amount} to {leaf.account}"
                )
            )
        problems += _mark_paid(paid_by, [claim.index], claim.tx)
    for batch in chain.distributions:
        indices = list(range(batch.first_index, batch.first_index + batch.count))
        last = batch.first_index + batch.count - 1
        missing = [i for i in indices if i not in by_index]
        if missing:
            problems.append(
                fail(
                    f"distribute of leaves {batch.first_index}..{last} (tx {batch.tx}): leaf "
                    f"{missing[0]} is not in the manifest"
                )
            )
        else:
            expected = sum(by_index[i].amount for i in indices)
            if expected != batch.amount:
                problems.append(
                    fail(
                        f"distribute of leaves {batch.first_index}..{last} (tx {batch.tx}): paid "
                        f"{batch.amount}, the leaves sum to {expected}"
                    )
                )
        problems += _mark_paid(paid_by, indices, batch.tx)
    paid = sum(c.amount for c in chain.claims) + sum(d.amount for d in chain.distributions)
    if paid > payout.total:
        problems.append(fail(f"payments: {paid} paid, more than the published total {payout.total}"))
    yield from problems
    if not problems:
        yield ok(
            f"payments: {len(chain.claims)} claims and {len(chain.distributions)} distributions match "
            "their leaves, no leaf paid twice"
        )
    unpaid = [leaf.index for leaf in leaves if leaf.index not in paid_by]
    yield note(
        f"payments: paid {paid} of {payout.total} ({len(leaves) - len(unpaid)} of {len(leaves)} leaves); unpaid "
        f"{max(payout.total - paid, 0)} ({_indices(unpaid)})"
    )


def _mark_paid(paid_by: dict[int, str], indices: Iterable[int], tx: str) -> list[Check]:
    twice = []
    for index in indices:
        if index in paid_by:
            twice.append(fail(f"leaf {index} is paid twice (tx {paid_by[index]} and tx {tx})"))
        else:
            paid_by[index] = tx
    return twice


def _indices(indices: list[int]) -> str:
    if not indices:
        return "no leaf"
    shown = ", ".join(map(str, indices[:_SHOWN_UNPAID]))
    return f"leaves {shown}{', …' if len(indices) > _SHOWN_UNPAID else ''}"


def check_epoch(chain: ChainEpoch, evidence: Evidence, *, require_hardware: bool, running: Software) -> list[Check]:
    """Every check of the epoch, in the order a reader follows the trail: chain, bundle, manifest, reports, the
    recomputation, the payments."""
    return [
        *check_results_on_chain(chain),
        *check_bundle(chain, evidence),
        *check_manifest(chain, evidence),
        *check_reports(evidence, require_hardware=require_hardware),
        *check_recompute(evidence, running=running),
        *check_payments(chain, evidence),
    ]


# ---------------------------------------------------------------------------------------------- the command


def run(
    *,
    rpc: str,
    campaign: str,
    epoch: int,
    artifacts: str | None,
    require_hardware: bool,
    from_block: int,
    running: Software,
    out: TextIO,
    err: TextIO,
    fetcher: HttpFetcher | None = None,
) -> int:
    """The `verify` command: 0 when every check passes, 1 when any fails, 2 for usage problems or when the chain or
    the artifacts cannot be reached."""
    try:
        if epoch < 0:
            raise UsageError("--epoch must be 0 or more")
        chain = ChainReader(rpc, from_block=from_block).read(campaign, epoch)
        path = epoch_path(chain.chain_id, chain.campaign, chain.epoch, "bundle")
        if artifacts is not None:
            base = checked_base(artifacts)
        elif chain.results:
            base = artifacts_base(chain.results[0].uri, expected_path=path)
        else:
            raise UsageError(f"epoch {epoch} has no ResultsRecorded on chain: pass --artifacts to say where to look")
        own = fetcher is None
        http = fetcher or HttpFetcher()
        try:
            evidence = gather(chain, http, base=base)
        finally:
            if own:
                http.close()
    except UsageError as exc:
        err.write(f"usage: {exc}\n")
        return EXIT_UNAVAILABLE
    except Unavailable as exc:
        err.write(f"unavailable: {exc}\n")
        return EXIT_UNAVAILABLE
    checks = check_epoch(chain, evidence, require_hardware=require_hardware, running=running)
    for check in checks:
        out.write(check.line() + "\n")
    failures = sum(check.failed for check in checks)
    out.write(f"{failures} checks failed\n" if failures else "all checks passed\n")
    return EXIT_FAILED if failures else 0

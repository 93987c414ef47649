"""A stand-in for the trust gate, for tests of the job loop that run a real executor without a TD to attest.

It replaces the two questions execution asks the attestation app, and nothing else:

- provisioning (`execution.provisioning.attested_identity`): the keys the executor announces on `/v1/health`,
  refused (`ProvisioningRefused`) unless it obeys this Django's controller key — what an executor would have to
  attest; marked `attested=False`;
- report ingestion (`signing_key_attested`, as `execution.reports` uses it): a key counts as attested when the stand-in
  handed it out (or a test vouched for it) and the registry has not withdrawn its executor's trust
  (`executor_trust_withdrawn`), as the real selector requires an executor in good standing.

The real gate is exercised for real in tests/attestation and in the end-to-end loop tests, which do not use this.
"""

from __future__ import annotations

from typing import Any

from attestation.errors import ProvisioningRefused
from attestation.interface import ExecutorIdentity
from attestation.models import AttestationRecord
from attestation.selectors import executor_trust_withdrawn
from mrmarket.controller import controller_key


class GateStandIn:
    def __init__(self) -> None:
        self.vouched: dict[str, str] = {}  # signing key → executor URL

    def vouch(self, signing_key: str, *, url: str) -> None:
        """Count `signing_key`, of the executor at `url`, as bound by an accepted attestation."""
        self.vouched[signing_key] = url

    def identity(self, client: Any) -> ExecutorIdentity:
        """In place of `attestation.gate.attested_identity`."""
        health = client.health()
        if health.get("controller_key") != controller_key().public_hex:
            raise ProvisioningRefused("the executor obeys another controller key than this Django's")
        self.vouch(health["signing_key"], url=client.base_url)
        return ExecutorIdentity(client.base_url, health["signing_key"], health["sealing_key"], attested=False)

    def signing_key_attested(self, signing_key: str) -> AttestationRecord | None:
        """In place of `attestation.selectors.signing_key_attested`."""
        url = self.vouched.get(signing_key)
        if url is None or executor_trust_withdrawn(url=url):
            return None
        return AttestationRecord(signing_key=signing_key, ok=True)  # never saved: a stand-in's word

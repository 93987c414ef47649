"""Cost of quote verification and of dev quote issuing. Pure Python + dcap-qvl: no Django, no services.

Verifies a real Intel TDX quote (dcap-qvl's public test sample, read from ../shared/fixtures/tdx beside the
checkout when present) 200 times at a time its collateral is valid, issues dev quotes (devnet/tdx) with their
verification, and verifies Intel Trust Authority tokens. Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT.parent / "shared" / "fixtures" / "tdx"
REAL_AT = 1_751_000_000
N = 200


def timed(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(10):
        fn()  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    from attestation.domain.quote import verify_quote
    from devnet.tdx.authority import DevQuoteAuthority

    if (FIXTURES / "tdx_quote").exists():
        raw = (FIXTURES / "tdx_quote").read_bytes()
        collateral = (FIXTURES / "tdx_quote_collateral.json").read_text()
        assert verify_quote(raw, collateral, now=REAL_AT).ok
        times = timed(lambda: verify_quote(raw, collateral, now=REAL_AT), N)
        print(f"BENCH attestation_verify_ms {statistics.median(times):.3f} ms")
    else:
        print(f"# real quote fixture not found at {FIXTURES}: attestation_verify_ms skipped", file=sys.stderr)

    authority = DevQuoteAuthority.ephemeral()
    mrtd = b"\x42" * 48
    times = timed(lambda: authority.quote(b"nonce", mrtd=mrtd), N)
    print(f"BENCH dev_quote_issue_ms {statistics.median(times):.3f} ms")

    now = int(time.time())
    dev_collateral = authority.collateral_json(now=now)
    dev_raw = authority.quote(b"nonce", mrtd=mrtd)
    root = authority.root_ca_der
    assert verify_quote(dev_raw, dev_collateral, now=now, root_ca_der=root).ok
    times = timed(lambda: verify_quote(dev_raw, dev_collateral, now=now, root_ca_der=root), N)
    print(f"BENCH dev_quote_verify_ms {statistics.median(times):.3f} ms")
    times = timed(lambda: authority.collateral_json(now=now), 50)
    print(f"BENCH dev_collateral_issue_ms {statistics.median(times):.3f} ms")

    # An Intel Trust Authority token (3072-bit RSA, as ITA signs): the whole check, JWKS already parsed.
    from attestation.domain.ita import Jwks, verify_token
    from devnet.ita.authority import DevTokenAuthority

    ita = DevTokenAuthority.ephemeral()
    jwks = Jwks.from_json(ita.jwks())
    for alg in ("PS384", "RS256"):
        token = ita.appraisal_token(mrtd="a1" * 48, rtmrs=["00" * 48] * 4, report_data="e5" * 64, now=now, alg=alg)
        assert verify_token(token, jwks, issuer=ita.issuer, now=now).mrtd == "a1" * 48
        times = timed(partial(verify_token, token, jwks, issuer=ita.issuer, now=now), N)
        print(f"BENCH ita_token_verify_{alg.lower()}_ms {statistics.median(times):.3f} ms")
    root = ita.root_ca_der
    times = timed(partial(verify_token, token, jwks, issuer=ita.issuer, now=now, root_ca_der=root), N)
    print(f"BENCH ita_token_verify_pinned_root_ms {statistics.median(times):.3f} ms")


if __name__ == "__main__":
    main()

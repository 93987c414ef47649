"""The public executors page: attested executors with measurement, TCB status and last
verification; dev-root executors marked "not hardware-attested"; failed and revoked ones left out."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from attestation.models import ExecutorRecord

pytestmark = pytest.mark.django_db


def executor(url: str, state: str, *, hardware: bool, mrtd: str) -> ExecutorRecord:
    return ExecutorRecord.objects.create(
        url=url,
        state=state,
        mrtd=mrtd,
        tcb_status="UpToDate",
        hardware_attested=hardware,
        build_version="1.2.3",
        signing_key="ab" * 32,
        sealing_key="cd" * 32,
        tags=["exchange:binance", "region:eu"],
        last_verified_at=timezone.now(),
    )


def test_the_page_lists_attested_executors_and_marks_dev_ones() -> None:
    hw = executor("http://hw", "verified", hardware=True, mrtd="11" * 48)
    dev = executor("http://dev", "verified", hardware=False, mrtd="22" * 48)
    executor("http://failed", "failed", hardware=True, mrtd="33" * 48)
    executor("http://revoked", "revoked", hardware=True, mrtd="44" * 48)
    page = Client().get("/executors/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-executor="{hw.pk}"' in html
    assert f'data-executor="{dev.pk}"' in html
    assert "11" * 48 in html
    assert "22" * 48 in html
    assert "33" * 48 not in html
    assert "44" * 48 not in html
    assert html.count("not hardware-attested</span>") == 1
    assert html.count(">hardware-attested</span>") == 1
    assert "exchange:binance, region:eu" in html
    assert "http://hw" not in html  # where an executor runs is not published
    assert "cd" * 32 not in html  # nor its sealing key


def test_the_page_shows_uptime_and_report_quality() -> None:
    checked = executor("http://a", "verified", hardware=True, mrtd="11" * 48)
    ExecutorRecord.objects.filter(pk=checked.pk).update(
        checks_total=8, checks_ok=6, reports_accepted=41, reports_refused=2
    )
    executor("http://b", "verified", hardware=True, mrtd="22" * 48)
    html = Client().get("/executors/").content.decode()
    assert "75 % of 8 checks" in html
    assert "41 / 2" in html
    assert "0 / 0" in html  # the unchecked one: no uptime yet, no reports


def test_the_page_says_so_when_there_is_none() -> None:
    assert "No executor has passed attestation yet." in Client().get("/executors/").content.decode()


def test_the_page_only_reads() -> None:
    assert Client().post("/executors/").status_code == 405


def test_the_api_lists_the_same_executors() -> None:
    executor("http://dev", "verified", hardware=False, mrtd="22" * 48)
    executor("http://failed", "failed", hardware=True, mrtd="33" * 48)
    rows = Client().get("/api/v1/attestation/executors/").json()
    assert [(r["mrtd"], r["hardware_attested"], r["tags"]) for r in rows] == [
        ("22" * 48, False, ["exchange:binance", "region:eu"])
    ]

"""What the public campaign page (`/campaigns/<chain_id>/<address>/`) shows, read in one place: the campaign as
mirrored, the budget left in the escrow (from the chain), the attested executors quoting its market now, its
rules in plain words, the open epoch's leaderboard (the recording oracle's preview), the first paint of the depth
chart, and the no-admin proof. docs/campaign-page.md says what each figure means and where it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from web3 import Web3

from attestation.models import ExecutorRecord
from campaigns import live
from campaigns.domain.depth_chart import ChartRefused, DepthChart, depth_chart, parse_levels
from campaigns.domain.rules import RulesUnknown, percent_of_fraction, rules_summary
from campaigns.models import Campaign
from campaigns.no_admin import CALL_REFUSED, CHAIN_TIMEOUT_SECONDS, NoAdminProof, no_admin_proof
from campaigns.selectors import campaign_status, reward_token
from campaigns.services import ERC20_ABI
from contracts import load_artifact
from execution.domain import mm_order as mm
from execution.models import ExecutionReport
from mrmarket.chain import get_web3
from mrmarket.config import ConfigError
from payouts.domain.epochs import CloseState
from payouts.errors import CampaignUnknown
from payouts.models import EpochClose, EpochPreview
from payouts.selectors import AuditAmount, _metadata, _Units, duration_text

# An executor quotes a market "now" when it signed a verified report for a running MM order on that market within
# this window: three of the default 60 s report intervals, so one late report does not drop a node.
NODE_WINDOW_SECONDS = 180
CAMPAIGN_ABI = load_artifact("Campaign").abi
LEADERBOARD_ROWS = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_RPC = "chain unreachable (no CHAIN_RPC_URL is configured)"


@dataclass(frozen=True)
class Budget:
    """What the escrow holds now that no published payout owes (`balanceOf(campaign) − outstanding()`), and what
    published payouts still owe to their claimants; or why it could not be read."""

    amount: AuditAmount | None
    unreachable: str = ""
    owed: AuditAmount | None = None  # published, not yet claimed or distributed


@dataclass(frozen=True)
class TokenUnits:
    """The units amounts are shown in: the token's own `symbol()` and `decimals()` when the chain answers (the
    metadata's are the creator's word only), and a note when the two differ or the token could not be read."""

    units: _Units
    note: str = ""


@dataclass(frozen=True)
class Epochs:
    total: int
    ended: int  # epochs whose end has passed
    current: int | None  # 0-based index of the running epoch; None before the start and after the end
    recorded: int  # epochs whose results are on chain


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    address: str
    depth_points: int
    volume: str  # maker volume in the pair's quote unit: the score counts it in whole hundredths
    share: str  # as a percentage
    estimated: AuditAmount


@dataclass(frozen=True)
class Leaderboard:
    epoch: int
    as_of: datetime
    rows: tuple[LeaderRow, ...]


@dataclass(frozen=True)
class Chart:
    """The first paint of the depth chart from the market's latest frame; `note` says why there is none."""

    geometry: DepthChart | None
    note: str
    seq: int | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class CampaignPage:
    campaign: Campaign
    title: str
    status: str
    epoch_length: str
    epochs: Epochs
    token_symbol: str
    token_decimals: int | None
    token_note: str
    budget_total: AuditAmount
    budget_left: Budget
    nodes: int
    node_window_seconds: int
    rules: tuple[str, ...]
    rules_unknown: str
    band_bps: int | None
    leaderboard: Leaderboard | None
    chart: Chart
    proof: NoAdminProof
    audit_url: str
    metadata_url: str
    depth_ws_path: str


def epochs_so_far(campaign: Campaign, *, now: datetime) -> Epochs:
    span = int((campaign.end - campaign.start).total_seconds())
    total = -(-span // campaign.epoch_seconds)
    recorded = EpochClose.objects.filter(campaign=campaign, state=CloseState.RECORDED.value).count()
    if now < campaign.start:
        return Epochs(total, 0, None, recorded)
    if now >= campaign.end:
        return Epochs(total, total, None, recorded)
    ended = int((now - campaign.start).total_seconds()) // campaign.epoch_seconds
    return Epochs(total, ended, ended, recorded)


def budget_left(campaign: Campaign, units: _Units, w3: Web3) -> Budget:
    """From the chain: the escrow's balance of its reward token less what published payouts still owe (the
    escrow's `outstanding`): what is left to pay in epochs to come, and to refund."""
    try:
        if w3.eth.chain_id != campaign.chain_id:
            return Budget(None, f"no RPC for chain {campaign.chain_id} is configured")
        escrow = Web3.to_checksum_address(campaign.address)
        erc20 = w3.eth.contract(address=Web3.to_checksum_address(campaign.token), abi=ERC20_ABI)
        balance = int(erc20.functions.balanceOf(escrow).call())
        try:
            owed = int(w3.eth.contract(address=escrow, abi=CAMPAIGN_ABI).functions.outstanding().call())
        except CALL_REFUSED:  # no escrow answers there (the no-admin checks say what is): its balance is all we know
            return Budget(units(balance))
    except Exception as exc:  # any RPC failure (refused, timeout, bad answer): the page says so and shows the rest
        return Budget(None, f"chain unreachable ({type(exc).__name__})")
    return Budget(units(max(0, balance - owed)), owed=units(owed))


def token_units(campaign: Campaign, metadata_units: _Units, w3: Web3 | None) -> TokenUnits:
    """The token's own symbol and decimals, read from the chain, which amounts on the page are shown in; the
    metadata's when the chain cannot be read (said so)."""
    if w3 is None:
        return TokenUnits(metadata_units, "the token's decimals are the metadata's: no chain to check them against")
    try:
        erc20 = w3.eth.contract(address=Web3.to_checksum_address(campaign.token), abi=ERC20_ABI)
        decimals = int(erc20.functions.decimals().call())
        symbol = str(erc20.functions.symbol().call())
    except Exception as exc:  # unreachable, or no ERC-20 metadata functions: the creator's word is all there is
        return TokenUnits(metadata_units, f"the token's decimals could not be read ({type(exc).__name__})")
    if not 0 <= decimals <= 36 or not symbol.isprintable() or len(symbol) > 20:
        return TokenUnits(_Units("", None), "the token reports decimals or a symbol no amount can be shown in")
    if metadata_units.decimals is None:
        return TokenUnits(_Units(symbol, decimals), f"the metadata gives no decimals; the token says {decimals}")
    if (metadata_units.symbol, metadata_units.decimals) != (symbol, decimals):
        note = (
            f"the metadata says {metadata_units.symbol or 'no symbol'} with {metadata_units.decimals} decimals; the "
            f"token itself says {symbol} with {decimals}: amounts are shown as the token says"
        )
        return TokenUnits(_Units(symbol, decimals), note)
    return TokenUnits(metadata_units)


def nodes_quoting(campaign: Campaign, *, now: datetime) -> int:
    """Attested executors quoting the campaign's market now: distinct executors in the registry's verified state
    whose signing key signed a verified report, received within the last NODE_WINDOW_SECONDS, for a running MM
    order on this exchange and pair."""
    if not campaign.exchange or not campaign.pair:
        return 0
    keys = (
        ExecutionReport.objects.filter(
            received_at__gte=now - timedelta(seconds=NODE_WINDOW_SECONDS),
            order__state=mm.State.RUNNING.value,
            order__symbol=campaign.pair,
            order__exchange_account__exchange=campaign.exchange,
        )
        .values_list("signing_key", flat=True)
        .distinct()
    )
    verified = ExecutorRecord.objects.filter(state=ExecutorRecord.State.VERIFIED, signing_key__in=list(keys))
    return int(verified.aggregate(n=Count("pk", distinct=True))["n"])


def _moment(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _share_text(share: str) -> str:
    try:
        value = Fraction(share)
    except (ValueError, ZeroDivisionError):
        return share
    return percent_of_fraction(value)


def _volume_text(cents: int, pair: str) -> str:
    """The score's maker volume, whole hundredths of a quote unit, in that unit: 1234 on MMT/USDT is "12.34 USDT"."""
    quote = pair.split("/")[1] if "/" in pair else ""
    whole, hundredths = divmod(cents, 100)
    return f"{whole:,}.{hundredths:02d} {quote}".rstrip()


def leaderboard(campaign: Campaign, units: _Units) -> Leaderboard | None:
    """The open epoch's participants ranked by estimated reward (then depth, volume, address), from the recording
    oracle's latest preview: what each would be paid if the epoch ended at its `as_of`."""
    preview = EpochPreview.objects.filter(campaign=campaign).first()
    if preview is None:
        return None
    entries = [p for p in preview.bundle.get("participants", []) if isinstance(p, dict)]
    entries.sort(key=lambda p: (-int(p["amount"]), -int(p["depth"]), -int(p["volume"]), str(p["address"])))
    rows = tuple(
        LeaderRow(
            rank=rank,
            address=str(p["address"]),
            depth_points=int(p["depth"]),
            volume=_volume_text(int(p["volume"]), campaign.pair),
            share=_share_text(str(p["share"])),
            estimated=units(int(p["amount"])),
        )
        for rank, p in enumerate(entries[:LEADERBOARD_ROWS], start=1)
    )
    return Leaderboard(preview.epoch, _moment(preview.as_of_ms), rows)


def first_paint(campaign: Campaign, band_bps: int | None) -> Chart:
    """The chart from the market's latest frame, for the page's first paint (the script redraws it live)."""
    if not campaign.exchange or not campaign.pair:
        return Chart(None, "No market known: no verified metadata document names one.")
    frame = live.latest_frame(campaign.exchange, campaign.pair)
    if not frame:
        return Chart(None, "No book yet: no depth frame of this market has been received.")
    if band_bps is None:
        return Chart(None, "No band known: the metadata's scoring parameters are not held.")
    try:
        mid = frame.get("mid")
        geometry = depth_chart(
            bids=parse_levels(frame.get("bids")),
            asks=parse_levels(frame.get("asks")),
            mid=Decimal(mid) if isinstance(mid, str) else None,
            band_bps=band_bps,
        )
    except (ChartRefused, ArithmeticError) as exc:
        return Chart(None, f"The latest book cannot be drawn: {exc}.")
    created_ms = frame.get("created_ms")
    created = _moment(created_ms) if isinstance(created_ms, int) else None
    seq = frame.get("seq")
    return Chart(geometry, "", seq if isinstance(seq, int) else None, created)


def _rules(metadata: dict[str, Any], pair: str) -> tuple[tuple[str, ...], str, int | None]:
    scoring = metadata.get("scoring")
    quote = pair.split("/")[1] if "/" in pair else ""
    try:
        rules = rules_summary(scoring, quote=quote)  # type: ignore[arg-type]
    except RulesUnknown as exc:
        reason = "no verified metadata document is held" if not metadata else str(exc)
        return (), reason, None
    band = scoring["max_spread_bps"] if isinstance(scoring, dict) else None
    return rules, "", band


def campaign_page(*, chain_id: int, address: str) -> CampaignPage:
    """Everything the campaign page shows. Raises `CampaignUnknown`. Reads the chain (the escrow's balance and the
    no-admin proof); an unreachable chain is said on the page, never raised."""
    campaign = Campaign.objects.filter(chain_id=chain_id, address=address.lower()).first()
    if campaign is None:
        raise CampaignUnknown(f"no campaign {address} on chain {chain_id}")
    now = timezone.now()
    metadata = _metadata(campaign)
    rules, rules_unknown, band = _rules(metadata, campaign.pair)
    title = metadata.get("title")
    try:
        w3: Web3 | None = get_web3(timeout=CHAIN_TIMEOUT_SECONDS)  # one client for the page's reads
    except ConfigError:
        w3 = None
    token = token_units(campaign, _Units(*reward_token(campaign, metadata)), w3)
    units = token.units
    symbol, decimals = units.symbol, units.decimals
    return CampaignPage(
        campaign=campaign,
        title=title if isinstance(title, str) and title else campaign.pair or "Campaign",
        status=campaign_status(campaign, now=now).value,
        epoch_length=duration_text(campaign.epoch_seconds),
        epochs=epochs_so_far(campaign, now=now),
        token_symbol=symbol,
        token_decimals=decimals,
        token_note=token.note,
        budget_total=units(int(campaign.budget)),
        budget_left=budget_left(campaign, units, w3) if w3 else Budget(None, NO_RPC),
        nodes=nodes_quoting(campaign, now=now),
        node_window_seconds=NODE_WINDOW_SECONDS,
        rules=rules,
        rules_unknown=rules_unknown,
        band_bps=band,
        leaderboard=leaderboard(campaign, units),
        chart=first_paint(campaign, band),
        proof=no_admin_proof(campaign=campaign, w3=w3) if w3 else NoAdminProof(unreachable=NO_RPC),
        audit_url=reverse("campaign-audit", args=[campaign.chain_id, campaign.address]),
        metadata_url=reverse("api-v1:campaigns:metadata", args=[campaign.metadata_hash]),
        depth_ws_path=f"/ws/v1/campaigns/{campaign.chain_id}/{campaign.address}/depth",
    )

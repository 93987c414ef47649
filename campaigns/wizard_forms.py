"""The creator wizard's four forms (template, market, budget, scoring) and the walk over a stored draft.

Each form validates its step against what the earlier steps chose (`WizardContext`), reads what it must from the
exchange (ccxt) and the chain, and says what is allowed in every error. `facts()` gives what the page shows beside
the fields (the market's minimums, the token, the per-epoch budget, the live scoring example); the JSON check
endpoint returns the same errors and facts. The draft holds each step's submitted text only: a step is done when
its text still validates now (a start can fall into the past, a balance can shrink)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from django import forms
from django.conf import settings

from campaigns.chain_reads import SYMBOL_MAX, TokenFacts, token_facts
from campaigns.domain.metadata import MetadataError, integer_bounds
from campaigns.domain.templates import TEMPLATES, Template, build_metadata
from campaigns.domain.wizard import (
    DAY,
    FORM_STEPS,
    START_GRACE_SECONDS,
    AmountError,
    budget_buys,
    decimal_text,
    epoch_budget,
    points_example,
    token_units,
)
from campaigns.errors import NotAToken
from execution.domain.units import for_people, to_decimal
from mrmarket.chain import get_web3
from mrmarket.errors import ApplicationError
from mrmarket.exchanges.client import configured_exchanges, exchange_market, exchange_symbols
from mrmarket.exchanges.errors import MarketNotListed

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
PAIR_RE = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")
SYMBOL_RE = re.compile(rf"^[A-Za-z0-9]{{1,{SYMBOL_MAX}}}$")
START_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
DEFAULT_ASSUMED_DEPTH = Fraction(50_000)  # quote units per side in the band, all makers together (an example)
EXAMPLE_DISTANCE_BPS = Fraction(30)  # "an order at 0.3 % from the mid"
EXAMPLE_ORDER_QUOTE = 1000
MAX_DURATION_DAYS = 3660


@dataclass
class WizardContext:
    """What the earlier steps chose, cleaned; a form reads the part it depends on."""

    creator: str
    template: Template | None = None
    market: dict[str, Any] = field(default_factory=dict)  # exchange, pair, base, quote
    budget: dict[str, Any] = field(default_factory=dict)  # token, budget, start, end, epoch_seconds
    scoring: dict[str, int] = field(default_factory=dict)  # the creator's values of the editable parameters


def fee_bps() -> int:
    return int(settings.CAMPAIGN_FEE_BPS)


class WizardForm(forms.Form):
    step = ""

    def __init__(self, data: Any = None, *, context: WizardContext) -> None:
        super().__init__(data)
        self.context = context

    def facts(self) -> dict[str, Any]:
        return {}

    def stored(self) -> dict[str, str]:
        """The submitted text of this form's fields, as the draft keeps it."""
        return {name: str(self.data.get(name, "")) for name in self.fields}

    def cleaned(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


# --- 1. template -----------------------------------------------------------------------------------------------


class TemplateStep(WizardForm):
    step = "template"
    template = forms.ChoiceField(
        choices=[(t.id, t.title) for t in TEMPLATES.values()],
        widget=forms.RadioSelect,
        error_messages={
            "required": "choose one of the four templates",
            "invalid_choice": f"one of: {', '.join(TEMPLATES)}",
        },
    )

    def facts(self) -> dict[str, Any]:
        return {"templates": [template_card(t, TemplateExample.defaults()) for t in TEMPLATES.values()]}


class TemplateExample(forms.Form):
    """The template page's "what does a budget buy" example (GET, optional): a budget, a duration, a depth."""

    budget = forms.DecimalField(
        min_value=1, max_digits=30, decimal_places=6, initial=10_000, required=False,
        error_messages={"min_value": "at least 1 token", "invalid": "a number of tokens, such as 10000"},
    )  # fmt: skip
    days = forms.IntegerField(
        min_value=1, max_value=MAX_DURATION_DAYS, initial=30, required=False,
        error_messages={"min_value": "from 1 to 3660 days", "max_value": "from 1 to 3660 days"},
    )  # fmt: skip
    depth = forms.DecimalField(
        min_value=1000, max_digits=30, decimal_places=6, initial=DEFAULT_ASSUMED_DEPTH, required=False,
        label="depth in the band, quote units per side",
        error_messages={
            "min_value": "at least 1,000 quote units: the example's own 1,000 are part of it",
            "invalid": "a number of quote units, such as 50000",
        },
    )  # fmt: skip

    @staticmethod
    def defaults() -> tuple[Fraction, int, Fraction]:
        return Fraction(10_000), 30, DEFAULT_ASSUMED_DEPTH

    def example(self) -> tuple[Fraction, int, Fraction]:
        budget, days, depth = self.defaults()
        if self.is_valid():
            data = self.cleaned_data
            budget = Fraction(data["budget"]) if data.get("budget") else budget
            days = data.get("days") or days
            depth = Fraction(data["depth"]) if data.get("depth") else depth
        return budget, days, depth


def template_card(template: Template, example: tuple[Fraction, int, Fraction]) -> dict[str, Any]:
    budget, days, depth = example
    buys = budget_buys(template=template, budget=budget, seconds=days * DAY, fee_bps=fee_bps(), assumed_depth=depth)
    scoring = template.scoring
    return {
        "id": template.id,
        "title": template.title,
        "summary": template.summary,
        "band_percent": decimal_text(Fraction(scoring["max_spread_bps"], 100), 2),
        "depth_percent": decimal_text(Fraction(scoring["depth_weight"]) * 100, 1),
        "epoch_days": decimal_text(Fraction(template.epoch_seconds, DAY), 2),
        "min_rest_seconds": scoring["min_rest_seconds"],
        "single_side_divisor": scoring["single_side_divisor"],
        "example_budget": decimal_text(budget, 6),
        "example_days": days,
        "example_depth": decimal_text(depth, 6),
        "paid_per_day": decimal_text(buys.paid_per_day),
        "depth_per_day": decimal_text(buys.depth_per_day),
        "per_1000_per_day": decimal_text(buys.per_1000_per_day),
        "one_sided_per_1000_per_day": decimal_text(buys.one_sided_per_1000_per_day),
    }


# --- 2. market -------------------------------------------------------------------------------------------------


class MarketStep(WizardForm):
    step = "market"
    exchange = forms.ChoiceField(
        choices=[], error_messages={"required": "choose an exchange", "invalid_choice": "one of: %(value)s"}
    )
    pair = forms.CharField(max_length=41, error_messages={"required": "a pair as BASE/QUOTE, such as MMT/USDT"})
    title = forms.CharField(
        max_length=120,
        required=False,
        label="Title (optional)",
        help_text="Shown on the campaign's page and in the list; at most 120 characters.",
        error_messages={"max_length": "at most 120 characters"},
    )

    def __init__(self, data: Any = None, *, context: WizardContext) -> None:
        super().__init__(data, context=context)
        exchanges = configured_exchanges()
        self.fields["exchange"].choices = [(e, e) for e in exchanges]  # type: ignore[attr-defined]
        self.fields["exchange"].error_messages["invalid_choice"] = (
            f"one of the exchanges configured here: {', '.join(exchanges)}"
        )
        self.market: dict[str, Any] | None = None

    def clean_pair(self) -> str:
        pair = self.cleaned_data["pair"].strip().upper()
        if not PAIR_RE.match(pair):
            raise forms.ValidationError("a pair as BASE/QUOTE, letters and digits only, such as MMT/USDT")
        base, quote = pair.split("/")
        if base == quote:
            raise forms.ValidationError("the base and the quote must differ")
        return pair

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        exchange, pair = data.get("exchange"), data.get("pair")
        if not exchange or not pair:
            return data
        try:
            self.market = exchange_market(exchange, pair)
        except MarketNotListed:
            try:
                listed = sorted(exchange_symbols(exchange))
            except ApplicationError:  # the listing cannot be read now: the refusal stands without examples
                listed = []
            some = ", ".join(listed[:8]) + (" …" if len(listed) > 8 else "")
            lists = f"; it lists {some}" if some else ""
            self.add_error("pair", f"{exchange} does not list {pair} as an active spot market{lists}")
        except ApplicationError as exc:  # unreachable, unknown to ccxt: the exchange is the field to change
            self.add_error("exchange", f"{exc.message}; try again, or choose another exchange")
        return data

    def stored(self) -> dict[str, str]:
        data = self.cleaned_data
        return {"exchange": data["exchange"], "pair": data["pair"], "title": data["title"].strip()}  # pair upper-cased

    def cleaned(self) -> dict[str, Any]:
        pair = self.cleaned_data["pair"]
        base, quote = pair.split("/")
        title = self.cleaned_data["title"].strip()
        return {"exchange": self.cleaned_data["exchange"], "pair": pair, "base": base, "quote": quote, "title": title}

    def facts(self) -> dict[str, Any]:
        if self.market is None:
            return {}
        return {"market": market_minimums(self.market)}


def _number(value: Any) -> str | None:
    """ccxt's float as the decimal it stands for (`1e-08` → `0.00000001`), via its shortest repr."""
    return None if value is None else format(to_decimal(value).normalize(), "f")


def market_minimums(market: dict[str, Any]) -> dict[str, Any]:
    """A ccxt market's precision and limits, as text (ccxt gives floats; these are shown, never computed with)."""
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}
    return {
        "symbol": market["symbol"],
        "base": market["base"],
        "quote": market["quote"],
        "min_amount": _number((limits.get("amount") or {}).get("min")),
        "min_cost": _number((limits.get("cost") or {}).get("min")),
        "min_price": _number((limits.get("price") or {}).get("min")),
        "amount_precision": _number(precision.get("amount")),
        "price_precision": _number(precision.get("price")),
    }


# --- 3. budget, token, start, duration, epoch length ------------------------------------------------------------

EPOCH_MIN, EPOCH_MAX = integer_bounds("epoch_seconds")
EPOCH_RANGE = f"from {EPOCH_MIN:,} to {EPOCH_MAX:,} seconds (1 minute to 30 days)"


class BudgetStep(WizardForm):
    step = "budget"
    token = forms.CharField(
        max_length=42,
        label="Reward token address",
        error_messages={"required": "the reward token's address (0x…)"},
        widget=forms.TextInput(attrs={"list": "known-tokens", "autocomplete": "off", "spellcheck": "false"}),
    )
    budget = forms.CharField(
        max_length=80, label="Budget, in tokens", error_messages={"required": "the budget, in tokens (such as 10000)"}
    )
    start = forms.CharField(
        max_length=19, label="Start (UTC)", error_messages={"required": "the start, as YYYY-MM-DD HH:MM in UTC"}
    )
    duration_days = forms.IntegerField(
        min_value=1, max_value=MAX_DURATION_DAYS, label="Duration, days",
        error_messages={
            "required": "the duration in days", "invalid": "a whole number of days",
            "min_value": "the campaign must end after it starts: from 1 to 3660 days",
            "max_value": "from 1 to 3660 days",
        },
    )  # fmt: skip
    epoch_seconds = forms.IntegerField(
        min_value=EPOCH_MIN, max_value=EPOCH_MAX, label="Epoch length, seconds",
        error_messages={
            "required": f"the epoch length: {EPOCH_RANGE}", "invalid": f"a whole number of seconds, {EPOCH_RANGE}",
            "min_value": EPOCH_RANGE, "max_value": EPOCH_RANGE,
        },
    )  # fmt: skip

    def __init__(self, data: Any = None, *, context: WizardContext) -> None:
        super().__init__(data, context=context)
        self.token_facts: TokenFacts | None = None
        self.units: int | None = None
        self.chain_now = int(get_web3().eth.get_block("latest")["timestamp"])
        if data is None and context.template is not None:  # a new step: the template's epoch, a start soon
            start = (self.chain_now // 3600 + 2) * 3600  # the next whole hour after an hour from now
            self.initial = {
                "start": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M"),
                "duration_days": 7,
                "epoch_seconds": context.template.epoch_seconds,
            }

    def clean_token(self) -> str:
        address = self.cleaned_data["token"].strip()
        if not ADDRESS_RE.match(address):
            raise forms.ValidationError("an address: 0x and 40 hexadecimal digits")
        try:
            facts = token_facts(address=address, owner=self.context.creator)
        except NotAToken as exc:
            raise forms.ValidationError(f"{exc.message}: give the address of an ERC-20 token") from None
        if not SYMBOL_RE.match(facts.symbol):
            raise forms.ValidationError(f"the token's symbol {facts.symbol!r} is not 1 to 20 letters and digits")
        self.token_facts = facts
        return facts.address

    def clean_start(self) -> int:
        text = self.cleaned_data["start"].strip()
        for fmt in START_FORMATS:
            try:
                moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
        else:
            raise forms.ValidationError("a date and time as YYYY-MM-DD HH:MM, in UTC")
        start = int(moment.timestamp())
        if start < self.chain_now - START_GRACE_SECONDS:
            now = datetime.fromtimestamp(self.chain_now, UTC).strftime("%Y-%m-%d %H:%M")
            raise forms.ValidationError(
                f"the start is in the past: at the earliest now, {now} UTC on the chain's clock "
                f"(a start up to {START_GRACE_SECONDS // 60} minutes ago is accepted)"
            )
        return start

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        facts = self.token_facts
        if facts is not None and "budget" in data:
            try:
                self.units = token_units(data["budget"], facts.decimals)
            except AmountError as exc:
                self.add_error("budget", str(exc))
            else:
                if self.units > facts.balance:
                    balance = for_people(facts.balance, facts.decimals, facts.symbol)
                    self.add_error("budget", f"above your balance: at most {balance}")
        if self.errors or self.units is None or facts is None:
            return data
        template = self.context.template
        assert template is not None  # the step opens only after the template step
        end = data["start"] + data["duration_days"] * DAY
        if end <= self.chain_now:
            self.add_error("duration_days", "the campaign would end before now: start later or run longer")
            return data
        try:
            build_metadata(
                template_id=template.id,
                chain_id=1,  # the chain is not a bound of this step; the review builds with the real one
                reward_token={"address": facts.address, "symbol": facts.symbol, "decimals": facts.decimals},
                exchange=self.context.market["exchange"],
                pair=self.context.market["pair"],
                start=data["start"],
                end=end,
                budget=self.units,
                scoring_overrides=self.context.scoring or None,
                epoch_seconds=data["epoch_seconds"],
            )
        except MetadataError as exc:
            for error in exc.errors:
                self.add_error(*_budget_field(error.field, error.message, template))
        return data

    def cleaned(self) -> dict[str, Any]:
        facts = self.token_facts
        assert facts is not None
        assert self.units is not None
        start = self.cleaned_data["start"]
        return {
            "token": {"address": facts.address, "symbol": facts.symbol, "decimals": facts.decimals},
            "balance": facts.balance,
            "budget": self.units,
            "start": start,
            "end": start + self.cleaned_data["duration_days"] * DAY,
            "epoch_seconds": self.cleaned_data["epoch_seconds"],
        }

    def facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chain_now": datetime.fromtimestamp(self.chain_now, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "start_grace_minutes": START_GRACE_SECONDS // 60,
        }
        facts = self.token_facts
        if facts is not None:
            out["token"] = {
                "address": facts.address,
                "symbol": facts.symbol,
                "decimals": facts.decimals,
                "balance": for_people(facts.balance, facts.decimals, facts.symbol),
            }
        if self.is_bound and not self.errors and facts is not None and self.units is not None:
            out.update(budget_facts(self.cleaned(), self.context))
        return out


def _budget_field(name: str, message: str, template: Template) -> tuple[str | None, str]:
    if name == "scoring.sample_seconds":
        sample = template.scoring["sample_seconds"]
        return "epoch_seconds", f"must be a multiple of {template.title}'s sample interval ({sample} s)"
    if name == "epoch_seconds":
        return "epoch_seconds", f"{message}: a longer epoch or a shorter campaign"
    if name == "budget":
        return "budget", message
    if name == "end":
        return "duration_days", "the campaign must end after it starts"
    return None, f"{name}: {message}"


def budget_facts(budget: dict[str, Any], context: WizardContext) -> dict[str, Any]:
    """The per-epoch budget, the fee, and what the budget buys, for the budget step and the review."""
    token = budget["token"]
    decimals, symbol = token["decimals"], token["symbol"]
    split = epoch_budget(
        budget=budget["budget"],
        start=budget["start"],
        end=budget["end"],
        epoch_seconds=budget["epoch_seconds"],
        fee_bps=fee_bps(),
    )
    template = context.template
    assert template is not None
    buys = budget_buys(
        template=template,
        budget=Fraction(budget["budget"], 10**decimals),
        seconds=budget["end"] - budget["start"],
        fee_bps=fee_bps(),
        assumed_depth=DEFAULT_ASSUMED_DEPTH,
    )
    quote = context.market.get("quote", "quote units")
    return {
        "budget_text": for_people(budget["budget"], decimals, symbol),
        "epochs": split.epochs,
        "per_epoch": for_people(split.per_epoch, decimals, symbol),
        "last_epoch": for_people(split.last_epoch, decimals, symbol),
        "fee_percent": decimal_text(Fraction(fee_bps(), 100), 2),
        "max_fee_per_epoch": for_people(split.max_fee_per_epoch, decimals, symbol),
        "max_paid_per_epoch": for_people(split.max_paid_per_epoch, decimals, symbol),
        "buys": {
            "quote": quote,
            "assumed_depth": decimal_text(buys.assumed_depth),
            "depth_per_day": f"{decimal_text(buys.depth_per_day)} {symbol}",
            "per_1000_per_day": f"{decimal_text(buys.per_1000_per_day)} {symbol}",
            "one_sided_per_1000_per_day": f"{decimal_text(buys.one_sided_per_1000_per_day)} {symbol}",
        },
    }


# --- 4. scoring parameters --------------------------------------------------------------------------------------

EXPLAIN = {
    "max_spread_bps": "The band around the mid, in basis points (100 = 1 %): orders farther away score nothing, "
    "and an order's points fall with the square of its distance.",
    "min_rest_seconds": "How long an order must have rested before a sample counts it: flickering quotes earn nothing.",
    "single_side_divisor": "A maker counts the thinner of its two sides, or the thicker divided by this if that is "
    "more: quoting one side only counts that side divided by this.",
}


class ScoringStep(WizardForm):
    step = "scoring"

    def __init__(self, data: Any = None, *, context: WizardContext) -> None:
        super().__init__(data, context=context)
        template = context.template
        assert template is not None
        for name, (low, high) in template.bounds.items():
            allowed = f"a whole number from {low:,} to {high:,} for {template.title}"
            self.fields[name] = forms.IntegerField(
                min_value=low,
                max_value=high,
                initial=template.scoring[name],
                help_text=EXPLAIN.get(name, ""),
                error_messages={"required": allowed, "invalid": allowed, "min_value": allowed, "max_value": allowed},
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        template = self.context.template
        budget = self.context.budget
        if self.errors or template is None or not budget:
            return data
        try:
            build_metadata(
                template_id=template.id,
                chain_id=1,
                reward_token=budget["token"],
                exchange=self.context.market["exchange"],
                pair=self.context.market["pair"],
                start=budget["start"],
                end=budget["end"],
                budget=budget["budget"],
                scoring_overrides=dict(data),
                epoch_seconds=budget["epoch_seconds"],
            )
        except MetadataError as exc:
            for error in exc.errors:
                name = error.field.removeprefix("scoring.")
                self.add_error(name if name in self.fields else None, error.message)
        return data

    def values(self) -> dict[str, Any]:
        """The scoring the examples use: the template's, with each valid submitted (or initial) value."""
        template = self.context.template
        assert template is not None
        scoring = dict(template.scoring)
        for name, bound in self.fields.items():
            raw = self.data.get(name) if self.is_bound else None
            try:
                value = bound.clean(raw) if raw is not None else bound.initial
            except forms.ValidationError:
                continue
            scoring[name] = value
        return scoring

    def facts(self) -> dict[str, Any]:
        return {"examples": scoring_examples(self.values(), self.context)}


def scoring_examples(scoring: dict[str, Any], context: WizardContext) -> dict[str, str]:
    """One plain sentence per editable parameter, computed with the oracle's own `order_points`."""
    quote = context.market.get("quote", "quote units")
    example = points_example(scoring=scoring, order_quote=EXAMPLE_ORDER_QUOTE, distance_bps=EXAMPLE_DISTANCE_BPS)
    distance = decimal_text(EXAMPLE_DISTANCE_BPS / 100, 2)
    order = f"An order of {EXAMPLE_ORDER_QUOTE:,} {quote} at {distance} % from the mid"
    band = decimal_text(Fraction(int(scoring["max_spread_bps"]), 100), 2)
    if example.counts:
        spread = (
            f"{order} scores {example.points:,} points a sample ({example.at_mid_points:,} at the mid; "
            f"the band is ±{band} %)."
        )
    else:
        spread = f"{order} scores 0 points: it is outside the ±{band} % band."
    rest = int(scoring["min_rest_seconds"])
    sample = int(scoring["sample_seconds"])
    first = -(-rest // sample) * sample
    rest_text = (
        f"An order placed just after a sample first counts {first:,} s later: it must rest {rest:,} s and samples "
        f"come every {sample:,} s."
    )
    divisor = int(scoring["single_side_divisor"])
    side = (
        f"{order} on both sides scores {example.two_sided_points:,} points a sample; on one side only, "
        f"{example.one_sided_points:,} (divided by {divisor})."
    )
    return {"max_spread_bps": spread, "min_rest_seconds": rest_text, "single_side_divisor": side}


# --- the walk over a draft ---------------------------------------------------------------------------------------

FORMS: dict[str, type[WizardForm]] = {
    "template": TemplateStep,
    "market": MarketStep,
    "budget": BudgetStep,
    "scoring": ScoringStep,
}


@dataclass
class DraftState:
    context: WizardContext
    done: dict[str, bool]
    failed: WizardForm | None  # the first stored step that no longer validates (its errors say why)


def draft_walk(steps: dict[str, dict[str, str]], *, creator: str, upto: str | None = None) -> DraftState:
    """Validate the draft's stored steps in order, each against the ones before it, up to (not including) `upto`;
    stops at the first that is missing or fails."""
    context = WizardContext(creator=creator)
    done: dict[str, bool] = {}
    for step in FORM_STEPS:
        if step == upto or step not in steps:
            break
        form = FORMS[step](steps[step], context=context)
        if not form.is_valid():
            return DraftState(context=context, done=done, failed=form)
        apply_step(context, form)
        done[step] = True
    return DraftState(context=context, done=done, failed=None)


def apply_step(context: WizardContext, form: WizardForm) -> None:
    cleaned = form.cleaned()
    if form.step == "template":
        context.template = TEMPLATES[cleaned["template"]]
    elif form.step == "market":
        context.market = cleaned
    elif form.step == "budget":
        context.budget = cleaned
    elif form.step == "scoring":
        context.scoring = {k: v for k, v in cleaned.items()}

"""The landing page's discovery filters: a GET form that works without JavaScript, each field's error saying what
is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from campaigns.selectors import CampaignStatus

STATUS_CHOICES = [("", "any status")] + [(s.value, s.value) for s in CampaignStatus]


class DiscoveryFilters(forms.Form):
    chain = forms.IntegerField(required=False, min_value=1, error_messages={"invalid": "a chain id is a whole number"})
    exchange = forms.RegexField(
        required=False,
        regex=r"^[a-z0-9_]{1,32}$",
        error_messages={"invalid": "an exchange id: lower-case letters, digits and _ (binance)"},
    )
    pair = forms.RegexField(
        required=False,
        regex=r"^[A-Za-z0-9]{1,20}/[A-Za-z0-9]{1,20}$",
        error_messages={"invalid": "a pair as BASE/QUOTE (MMT/USDT)"},
    )
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    budget_left = forms.BooleanField(required=False, label="with budget left")

    def selection(self) -> dict[str, Any]:
        """The cleaned filters as `campaign_cards` takes them."""
        data = self.cleaned_data
        return {
            "chain_id": data.get("chain"),
            "exchange": data.get("exchange") or None,
            "pair": (data.get("pair") or "").upper() or None,
            "status": CampaignStatus(data["status"]) if data.get("status") else None,
            "with_budget_left": bool(data.get("budget_left")),
        }

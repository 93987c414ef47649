"""The campaigns app's answer to the core's campaign directory (`mrmarket.campaign_directory`): may an MM order
serve this campaign? Registered from `CampaignsConfig.ready()`, so execution asks without importing campaigns."""

from __future__ import annotations

from django.utils import timezone

from campaigns.selectors import campaign_get
from mrmarket.campaign_directory import CampaignMarketMismatch, CampaignNotActive, UnknownCampaign


class CampaignTableDirectory:
    """The indexed campaigns (`campaigns.models.Campaign`): known by chain id and lower-case address, active until
    its end, paying for the exchange and pair of its verified metadata."""

    def campaign_for_order(self, *, chain_id: int, address: str, exchange: str, symbol: str) -> None:
        campaign = campaign_get(chain_id=chain_id, address=address)
        extra = {"chain_id": chain_id, "address": address.lower()}
        if campaign is None:
            raise UnknownCampaign(f"no campaign {address.lower()} on chain {chain_id}", extra=extra)
        if timezone.now() >= campaign.end:
            raise CampaignNotActive(
                f"campaign {campaign.address} ended at {campaign.end.isoformat()}",
                extra={**extra, "end": campaign.end.isoformat()},
            )
        if not campaign.exchange or not campaign.pair:
            # Its metadata is not held (or not verified): nobody can say which market it pays for.
            raise CampaignMarketMismatch(f"campaign {campaign.address} has no known market", extra=extra)
        if (campaign.exchange, campaign.pair) != (exchange, symbol):
            raise CampaignMarketMismatch(
                f"campaign {campaign.address} pays for {campaign.pair} on {campaign.exchange}, "
                f"not {symbol} on {exchange}",
                extra={**extra, "campaign_exchange": campaign.exchange, "campaign_pair": campaign.pair},
            )


DIRECTORY = CampaignTableDirectory()

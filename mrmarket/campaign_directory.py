"""The campaign directory: how a lower layer asks whether an MM order may serve a campaign.

Execution must refuse an MM order for a campaign that does not exist, has ended or pays for another market, but
campaigns sit above execution in the layers (pyproject, [tool.importlinter]) and execution may not import them.
So the core defines the question (`CampaignDirectory`) and its typed answers here, the campaigns app registers
the one implementation from its `AppConfig.ready()`, and execution asks through `campaign_for_order`. With
nothing registered the question cannot be answered, and it is refused (`CampaignDirectoryNotConfigured`) rather
than waved through: an order would otherwise claim a campaign nobody checked.
"""

from __future__ import annotations

from typing import Protocol

from mrmarket.errors import ApplicationError


class CampaignDirectoryError(ApplicationError):
    code = "campaign_directory_error"


class UnknownCampaign(CampaignDirectoryError):
    code = "campaign_unknown"


class CampaignNotActive(CampaignDirectoryError):
    """The campaign has ended: an order started now could earn nothing from it."""

    code = "campaign_not_active"


class CampaignMarketMismatch(CampaignDirectoryError):
    """The order's exchange and symbol are not the market the campaign pays for (or that market is not known)."""

    code = "campaign_market_mismatch"


class CampaignDirectoryNotConfigured(CampaignDirectoryError):
    code = "campaign_directory_not_configured"
    status = 503


class CampaignDirectory(Protocol):
    def campaign_for_order(self, *, chain_id: int, address: str, exchange: str, symbol: str) -> None:
        """Return when an order on `exchange`/`symbol` may serve campaign `chain_id`:`address` (lower-case 0x);
        raise UnknownCampaign, CampaignNotActive or CampaignMarketMismatch otherwise."""
        ...


_directory: CampaignDirectory | None = None


def register(directory: CampaignDirectory) -> None:
    """Install the directory (once; the same one again is a no-op, as `AppConfig.ready()` may run twice)."""
    global _directory
    if _directory is not None and _directory is not directory:
        raise ValueError("a campaign directory is already registered")
    _directory = directory


def registered() -> CampaignDirectory | None:
    return _directory


def unregister() -> None:
    """Remove the directory (tests that check the refusal when none is installed restore it afterwards)."""
    global _directory
    _directory = None


def campaign_for_order(*, chain_id: int, address: str, exchange: str, symbol: str) -> None:
    """Ask the registered directory; raises its typed errors, or CampaignDirectoryNotConfigured if there is none."""
    if _directory is None:
        raise CampaignDirectoryNotConfigured("no campaign directory is registered: campaigns cannot be checked")
    _directory.campaign_for_order(chain_id=chain_id, address=address, exchange=exchange, symbol=symbol)

"""Models of the payouts app: fields, constraints and TextChoices states; no business logic in save()."""

from django.db import models

# --- Market-data recorder: the oracle's own order-book snapshots, one row per campaign and sample time --------


class BookSnapshot(models.Model):
    """The campaign market's book at one sample time as the recorder saw it, trimmed to the scoring band plus a
    margin, levels best first as exact decimal strings ({"bids": [[price, size], ...], "asks": [...]}). `book`
    null is a gap, `gap_reason` says why; a sample time with no row is a gap too (the recorder was not running)."""

    class Source(models.TextChoices):
        WS = "ws"
        REST = "rest"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="book_snapshots")
    t_ms = models.BigIntegerField()  # the sample time (campaign start + k * sample_seconds)
    book = models.JSONField(null=True)
    exchange_ts_ms = models.BigIntegerField(null=True)  # the book's own time (exchange event, else arrival)
    recorded_ms = models.BigIntegerField()
    source = models.CharField(max_length=4, choices=Source.choices, blank=True, default="")
    gap_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=("campaign", "t_ms"), name="book_snapshot_unique")]

    def __str__(self) -> str:
        return f"book of campaign {self.campaign_id} at {self.t_ms}"

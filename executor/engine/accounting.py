"""Position and PnL of one job from its fills. Pure, exact (`Decimal`).

Average-cost accounting in the quote asset. The job starts holding `base0` at the start mark (its cost basis),
so PnL measures what the market making did, not what the held inventory did before. A fill that adds to the
position moves the average cost; one that reduces it realizes `(price − avg)·amount` (long) or the mirror
(short). Fees are booked apart from trading PnL, once per trade id (the tracker passes each trade once), in
quote: a fee charged in base is valued at the fill price. `net = realized + unrealized − fees`.

Exposure: the base the job would hold if every live buy filled, valued at the mark (what `max_exposure_quote`
bounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


@dataclass
class Position:
    base_asset: str
    quote_asset: str
    position: Decimal = ZERO  # base units, relative cost accounting (can go negative when selling start stock)
    avg_cost: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    volume_quote: Decimal = ZERO
    peak_net: Decimal = ZERO
    fee_by_asset: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def opening(cls, base_asset: str, quote_asset: str, *, base0: Decimal, mark: Decimal) -> Position:
        return cls(base_asset, quote_asset, position=base0, avg_cost=mark if base0 else ZERO)

    def fill(self, *, side: str, price: Decimal, amount: Decimal, fee: Decimal, fee_asset: str) -> None:
        signed = amount if side == "buy" else -amount
        self.volume_quote += price * amount
        if self.position == 0 or (self.position > 0) == (signed > 0):
            total = self.position + signed
            self.avg_cost = (self.avg_cost * abs(self.position) + price * amount) / abs(total)
            self.position = total
        else:
            closing = min(abs(signed), abs(self.position))
            direction = 1 if self.position > 0 else -1
            self.realized += (price - self.avg_cost) * closing * direction
            remainder = abs(signed) - closing
            self.position += signed
            if self.position == 0:
                self.avg_cost = ZERO
            elif remainder > 0:  # flipped sides: the rest opens at this price
                self.avg_cost = price
        self.fee_by_asset[fee_asset] = self.fee_by_asset.get(fee_asset, ZERO) + fee
        if fee_asset == self.quote_asset or not fee_asset:
            self.fees += fee
        elif fee_asset == self.base_asset:
            self.fees += fee * price
        # A fee in a third asset (e.g. an exchange token) is recorded by asset but cannot be valued here.

    def unrealized(self, mark: Decimal | None) -> Decimal:
        if mark is None or self.position == 0:
            return ZERO
        return (mark - self.avg_cost) * self.position

    def net(self, mark: Decimal | None) -> Decimal:
        return self.realized + self.unrealized(mark) - self.fees

    def observe(self, mark: Decimal | None) -> Decimal:
        """Net PnL now; remembers the peak for the drawdown limit. Returns the drawdown from that peak."""
        net = self.net(mark)
        self.peak_net = max(self.peak_net, net)
        return self.peak_net - net

"""Trading accounts of the simulated exchange, from ``KEY:SECRET[:MAKER:TAKER]`` specs."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sim_exchange.engine import Account, Balance


def parse_balances(text: str) -> dict[str, Decimal]:
    """Parse ``USDT:1000000,BTC:100`` into ``{"USDT": Decimal("1000000"), ...}``."""
    out: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        asset, _, amount = item.partition(":")
        try:
            out[asset.strip().upper()] = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"balance {item!r}: expected ASSET:AMOUNT") from None
    return out


def parse_account(spec: str, maker_fee: Decimal, taker_fee: Decimal, balances: dict[str, Decimal]) -> Account:
    """Build an account from ``KEY:SECRET`` or ``KEY:SECRET:MAKER_FEE:TAKER_FEE``."""
    parts = spec.strip().split(":")
    if len(parts) not in (2, 4) or not parts[0] or not parts[1]:
        raise ValueError(f"account {spec!r}: expected KEY:SECRET or KEY:SECRET:MAKER_FEE:TAKER_FEE")
    if len(parts) == 4:
        try:
            maker_fee, taker_fee = Decimal(parts[2]), Decimal(parts[3])
        except InvalidOperation:
            raise ValueError(f"account {spec!r}: fees must be decimals such as 0.001") from None
    return Account(
        api_key=parts[0],
        api_secret=parts[1],
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        balances={asset: Balance(free=amount) for asset, amount in balances.items()},
    )

"""Number formatting shared by the templates and the charts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}
NO_CENTS = {"JPY", "KRW"}


def _with_symbol(text: str, currency: str, negative: bool, sign: str = "") -> str:
    symbol = SYMBOLS.get(currency)
    lead = "-" if negative else sign
    if symbol:
        return f"{lead}{symbol}{text}"
    return f"{lead}{text} {currency}".rstrip()


def money(value: Decimal | float | int | None, currency: str, *, signed: bool = False) -> str:
    """``$1,234.57``, ``-€12.00``, ``1,234.57 CHF``; ``+`` in front of a gain when ``signed``."""
    if value is None:
        return "n/a"
    amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    places = Decimal(1) if currency in NO_CENTS else Decimal("0.01")
    q = amount.quantize(places, rounding=ROUND_HALF_UP)
    text = f"{abs(q):,.0f}" if currency in NO_CENTS else f"{abs(q):,.2f}"
    return _with_symbol(text, currency, q < 0, "+" if signed and q > 0 else "")


def compact(value: Decimal | float | int, currency: str) -> str:
    """``$12.3k``, ``$1.2M``: for chart axes."""
    amount = float(value)
    size = abs(amount)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            number = f"{size / limit:,.1f}".removesuffix(".0") + suffix
            break
    else:
        number = f"{size:,.0f}"
    return _with_symbol(number, currency, amount < 0)


def pct(value: float | None, *, signed: bool = True) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 10:
        return f"{value:+.0%}" if signed else f"{value:.0%}"
    return f"{value:+.1%}" if signed else f"{value:.1%}"

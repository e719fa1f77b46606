"""Integer money: what usage costs, what a freeze holds, how prepaid value is drawn down."""

FREEZE_HOURS = 2
SECONDS_PER_HOUR = 3600


def usage_amount(seconds: int, price_per_hour: int) -> int:
    """What `seconds` of usage cost in total: ceil(seconds x price / 3600) minor units."""
    return -(-seconds * price_per_hour // SECONDS_PER_HOUR)


def freeze_amount(price_per_hour: int) -> int:
    """The freeze a postpaid start holds: two hours of the spec's price."""
    return FREEZE_HOURS * price_per_hour


def prepaid_value(value_left: int, seconds_left: int, seconds_used: int) -> int:
    """The share of `value_left` that `seconds_used` of `seconds_left` carry, exactly.

    Floor division for a partial draw, everything that is left for the last one: the values
    drawn always add up to what the hours cost, to the minor unit.
    """
    if seconds_used >= seconds_left:
        return value_left
    return value_left * seconds_used // seconds_left


def format_amount(amount: int, currency: str) -> str:
    """`amount` minor units for a person: "12.34 USD" (two decimals, as Stripe's USD/EUR)."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency}"

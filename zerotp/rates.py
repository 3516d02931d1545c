"""Rate strings such as `100/s` (no Django here: settings.py validates with it)."""

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`100/s` -> (100, 1); `0` -> None (no limit). ValueError for anything else."""
    if rate.strip() == "0":
        return None
    count, _, period = rate.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate like 100/s, 600/m or 0")
    return int(count), PERIODS[period]

"""A tiny Solomon instance in the classic text format (CRLF, a line with one space after the header)."""

from __future__ import annotations

ROWS = [  # number, x, y, demand, ready, due, service
    (0, 50, 50, 0, 0, 400, 0),
    (1, 60, 50, 10, 0, 100, 10),
    (2, 70, 50, 10, 0, 150, 10),
    (3, 70, 60, 10, 30, 200, 10),
    (4, 40, 50, 10, 0, 100, 10),
    (5, 30, 50, 10, 50, 160, 10),
    (6, 30, 40, 10, 0, 300, 10),
    (7, 51, 51, 5, 200, 250, 10),
    (8, 50, 60, 15, 0, 390, 10),
]
FLEET, CAPACITY = 3, 30


def text(name: str = "TINY8", rows: list[tuple[int, ...]] = ROWS, fleet: int = FLEET, capacity: int = CAPACITY) -> str:
    lines = [name, "", "VEHICLE", "NUMBER     CAPACITY", f"  {fleet}         {capacity}", "", "CUSTOMER",
             "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME", " "]
    lines += ["".join(f"{v:>10}" for v in row) + "   " for row in rows]
    return "\r\n".join(lines) + "\r\n"

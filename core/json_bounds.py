"""JSON from clients, with its nesting bounded: a deep document is refused before it is parsed.

Python's json recurses once per level and fails with RecursionError (not a ValueError) past
about a thousand levels; a shallower document that is still deep may fail later, wherever
other code recurses over it. No request of this API nests more than a few levels, so a
document nested deeper than MAX_DEPTH is refused as malformed. Pure: imports no Django.
"""

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class TooDeep(ValueError):
    """A JSON document nested deeper than MAX_DEPTH."""


def depth(text: str) -> int:
    """How deeply the JSON text nests arrays and objects (brackets inside strings not counted)."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """json.loads, refusing a document nested deeper than MAX_DEPTH with TooDeep (a
    ValueError, as every other malformed document gives)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    # counting is cheap and needed only when there are enough brackets to be too deep
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(text) > MAX_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # not reached within MAX_DEPTH; kept so that no caller sees one
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels") from None

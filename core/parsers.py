"""The API's JSON parser: DRF's, with the nesting of a body bounded (core.json_bounds)."""

import codecs
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from core import json_bounds


class JSONParser(parsers.JSONParser):
    """A body that is not JSON, or nests deeper than json_bounds.MAX_DEPTH, is a 400
    `malformed_request`."""

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json_bounds.loads(text, parse_constant=json.strict_constant
                                     if self.strict else None)
        except ValueError as exc:  # UnicodeDecodeError and TooDeep are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None

"""Parsing untrusted XML with expat directly: any DOCTYPE or entity declaration is refused
(billion laughs, external entities), syntax errors come back with their line, and each element
remembers the line it starts on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.parsers import expat


class ForbiddenXmlError(Exception):
    """The document declares a DOCTYPE or entities, which an annotation file never needs."""

    def __init__(self, what: str, line: int) -> None:
        super().__init__(what)
        self.what, self.line = what, line


class XmlSyntaxError(Exception):
    """The document is not well-formed XML."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass
class ParsedXml:
    """The element tree and the line each element starts on."""

    root: ET.Element
    lines: dict[int, int] = field(default_factory=dict)

    def line_of(self, element: ET.Element | None) -> int | None:
        """The line `element` starts on, when known."""
        return None if element is None else self.lines.get(id(element))


def parse_xml(data: bytes) -> ParsedXml:
    """Parse `data`; raise ForbiddenXmlError or XmlSyntaxError instead of expanding anything."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}

    def forbid(what: str) -> object:
        def handler(*_args: object) -> None:
            raise ForbiddenXmlError(what, parser.CurrentLineNumber)
        return handler

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartDoctypeDeclHandler = forbid("DOCTYPE declaration")
    parser.EntityDeclHandler = forbid("ENTITY declaration")
    parser.UnparsedEntityDeclHandler = forbid("unparsed entity declaration")
    parser.ExternalEntityRefHandler = forbid("external entity reference")
    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlSyntaxError(expat.ErrorString(exc.code), exc.lineno, exc.offset) from None
    root = builder.close()
    return ParsedXml(root, lines)

"""docs/openapi.json is the schema the platform serves: regenerated with `make openapi`."""

import json
from pathlib import Path

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


# Django bounds integer model fields by the database's column ranges (SQLite: 64-bit for all;
# PostgreSQL: 16, 32 or 64), so those bounds, and the int64 format they imply, depend on where
# the schema is generated. Everything else must match.
_COLUMN_BOUNDS = {2**63 - 1, -2**63, 2**31 - 1, -2**31, 2**15 - 1, -2**15}


def _without_column_bounds(node: object) -> object:
    if isinstance(node, list):
        return [_without_column_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    bounded = node.get("type") == "integer" and (
        node.get("maximum") in _COLUMN_BOUNDS or node.get("minimum") in _COLUMN_BOUNDS)
    return {key: _without_column_bounds(value) for key, value in node.items()
            if not (bounded and key in ("maximum", "minimum", "format")
                    and (key == "format" or value in _COLUMN_BOUNDS))}


def test_docs_openapi_json_is_the_served_schema():
    served = json.loads(OpenApiJsonRenderer().render(
        SchemaGenerator().get_schema(request=None, public=True)))
    written = json.loads(DOCUMENT.read_text())
    assert _without_column_bounds(written) == _without_column_bounds(served), (
        "docs/openapi.json is stale: run `make openapi`")


def test_the_comparison_still_sees_a_changed_description():
    written = json.loads(DOCUMENT.read_text())
    changed = json.loads(DOCUMENT.read_text())
    changed["info"]["description"] = changed["info"].get("description", "") + " (changed)"
    assert _without_column_bounds(written) != _without_column_bounds(changed)


def test_docs_errors_md_lists_every_code_of_the_registry():
    from core.errors import markdown_table

    page = (DOCUMENT.parent / "errors.md").read_text()
    assert markdown_table() in page, "docs/errors.md's table differs from core.errors"


def test_nothing_a_reader_opens_points_outside_the_repository():
    root = DOCUMENT.parents[1]
    pages = [root / "README.md", root / "client" / "README.md", *DOCUMENT.parent.glob("*.md")]
    for page in pages:
        text = page.read_text()
        for outside in ("../shared", "/work/", "shared/API.md", "API.md", "DESIGN.md"):
            assert outside not in text, (page.name, outside)

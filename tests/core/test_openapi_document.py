"""docs/openapi.json is the schema the platform serves: regenerated with `make openapi`."""

import json
from pathlib import Path

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_docs_openapi_json_is_the_served_schema():
    served = json.loads(OpenApiJsonRenderer().render(
        SchemaGenerator().get_schema(request=None, public=True)))
    written = json.loads(DOCUMENT.read_text())
    assert written == served, "docs/openapi.json is stale: run `make openapi`"


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

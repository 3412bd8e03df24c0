"""JSON Schema files generated from the message models (checked in under json_schemas/).

Regenerate with ``python -m tubewatch.schemas``; a test fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from tubewatch.messages import MESSAGE_TYPES

SCHEMA_DIR = Path(__file__).parent / "json_schemas"


def render_schemas() -> dict[Path, str]:
    """Each message type's schema file path and its JSON text."""
    rendered = {}
    for model in MESSAGE_TYPES:
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://tubewatch.dev/schemas/{model.schema_name}.json"
        schema["title"] = model.schema_name
        rendered[SCHEMA_DIR / f"{model.schema_name}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return rendered


def write_schemas() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for path, text in render_schemas().items():
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)

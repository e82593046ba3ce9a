"""The OpenAPI document's request schemas, derived from the settings classes themselves (their
declared fields are the one source of truth), so /docs shows every setting of every mode."""

from __future__ import annotations

from typing import Any

from ..engine.modes import MODE_NAMES, settings_class
from .policy import FILE_KEYS

REF = "#/components/schemas/{model}"
JOB_KEYS = ("mode", "settings", "previews", "video_format", "resume")


def settings_schemas() -> dict[str, dict[str, Any]]:
    """name -> JSON schema of each mode's settings class (pydantic models or dataclasses), nested ones hoisted."""
    from pydantic import TypeAdapter

    out: dict[str, dict[str, Any]] = {}
    for cls in dict.fromkeys(settings_class(mode) for mode in MODE_NAMES):
        if hasattr(cls, "model_json_schema"):
            schema = cls.model_json_schema(ref_template=REF)
        else:
            schema = TypeAdapter(cls).json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[cls.__name__] = schema
    return out


def job_schemas(settings_names: list[str]) -> dict[str, dict[str, Any]]:
    job = {
        "type": "object",
        "title": "JobRequest",
        "required": ["mode"],
        "additionalProperties": False,
        "properties": {
            "mode": {"type": "string", "enum": list(MODE_NAMES)},
            "settings": {
                "description": "The mode's settings, as a run's settings.json holds them. A file is named as "
                "`upload:<id>` (POST /uploads) or a path under the output root.",
                "anyOf": [{"$ref": REF.format(model=name)} for name in settings_names],
            },
            "previews": {"type": "boolean", "default": False, "description": "Send live previews as events."},
            "video_format": {"type": "string", "enum": ["mp4", "gif"], "default": "mp4"},
            "resume": {
                "type": ["string", "null"],
                "description": "An interrupted dream/animate run to continue, as `mode/name` (GET /runs).",
            },
        },
    }
    binary = {"type": "string", "format": "binary"}
    files = {key: ({"type": "array", "items": binary} if key == "images" else binary) for key in FILE_KEYS}
    multipart = {
        "type": "object",
        "title": "JobRequestWithFiles",
        "required": ["job"],
        "properties": {"job": {"type": "string", "description": "The JobRequest as JSON."}, **files},
    }
    return {"JobRequest": job, "JobRequestWithFiles": multipart}


def add_request_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put the settings and job schemas into an OpenAPI document and make POST /jobs use them."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    settings = settings_schemas()
    components.update(settings)
    components.update(job_schemas([name for name in settings if name.endswith("Settings")]))
    openapi["paths"]["/jobs"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": REF.format(model="JobRequest")}},
            "multipart/form-data": {"schema": {"$ref": REF.format(model="JobRequestWithFiles")}},
        },
    }
    return openapi

"""The shapes the HTTP API answers with, for its OpenAPI document.

Most bodies are models of :mod:`daemon.queries` and :mod:`daemon.scoring.snapshot`
already (a snapshot, a history page, a diff). The ones here describe bodies
that the query layer returns in a flattened or assembled form (an
explanation, the alerts listing), the error body, and ``/healthz``. They are
only declared, never used to build a body: the routes send exactly what the
CLI's ``--json`` prints, and the schemathesis test checks that these
declarations match it.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field, create_model

from daemon.alerting.rules import Alert, AlertMessage, OutboxItem
from daemon.scoring.snapshot import CriterionScore


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, repeated.")
    message: str = Field(description="One line saying what is wrong.")


class ErrorBody(BaseModel):
    """Every error: an unknown id (404), a bad parameter (422), a missing token (401), an unreadable database (503)."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class ExplanationBody(CriterionScore):
    """One criterion with its checks and evidence (``pillarwatch explain --json``)."""

    project: str
    snapshot: int | None
    pillar: str


def _extended(name: str, base: type[BaseModel], doc: str, *, drop: frozenset[str] = frozenset(), **extra: Any) -> type[BaseModel]:
    """``base``'s fields, less ``drop``, plus ``extra``: the model of a body assembled from ``base``."""
    fields: dict[str, Any] = {k: (f.annotation, f) for k, f in base.model_fields.items() if k not in drop}
    return create_model(name, __doc__=doc, __module__=__name__, **fields, **extra)  # type: ignore[call-overload, no-any-return]


Delivery = _extended(
    "Delivery", OutboxItem, "One message of an alert for one channel, and how its delivery went.",
    drop=frozenset({"message"}),
    event=(AlertMessage.model_fields["event"].annotation, ...), title=(str, ...),
)
AlertEntry = _extended(
    "AlertEntry", Alert, "An alert, its fingerprint and the delivery of each of its messages.",
    fingerprint=(str, ...), deliveries=(list[Delivery], ...),  # type: ignore[valid-type]
)


class DisabledChannel(BaseModel):
    """A channel switched off by an HTTP 410, until `pillarwatch alerts enable` or a change of its configuration."""

    channel: str
    disabled_at: str
    reason: str


class AlertsBody(BaseModel):
    """``pillarwatch alerts --json``: alerts newest first, the outbox backlog by state, and disabled channels."""

    alerts: list[AlertEntry]  # type: ignore[valid-type]
    outbox: dict[str, int]
    disabled_channels: list[DisabledChannel] = []


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a route for the errors it can answer with."""
    why = {404: "Unknown project, snapshot, pillar or criterion.", 422: "A bad parameter.",
           503: "The database cannot be read."}
    return {status: {"model": ErrorBody, "description": why[status]} for status in statuses}


def openapi_document(app: FastAPI, *, open_paths: frozenset[str]) -> dict[str, Any]:
    """FastAPI's document plus what middleware does: the optional bearer token (401) and the 500 body."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer",
        "description": "Required only when `api.token_env` or `api.token_file` is configured.",
    }
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    schemas = components.setdefault("schemas", {})
    if "ErrorBody" not in schemas:  # no route declared an error of its own
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}), ErrorBody=body)
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses["500"] = {"description": "An unexpected fault (logged by the server).", "content": error_ref}
            if "422" in responses:  # FastAPI's default body; ours is reshaped into ErrorBody
                responses["422"] = {"description": "A bad parameter.", "content": error_ref}
            for status, response in responses.items():
                # An HTML or SVG route still answers errors in JSON; FastAPI files them under the route's type.
                if status[0] in "45" and "content" in response:
                    response["content"] = {"application/json": next(iter(response["content"].values()))}
            if path in open_paths:
                continue
            # `{}` makes the token optional: an API without a configured token is open.
            operation["security"] = [{"bearer": []}, {}]
            responses["401"] = {
                "description": "The bearer token is missing or wrong.",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
                "content": error_ref,
            }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc


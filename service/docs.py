"""Human-readable API docs: Swagger UI at /docs/, rendering /openapi.yaml.

Swagger UI's scripts and styles come from the flask-swagger-ui package (it ships Swagger UI's
dist files; its version is Swagger UI's), served by this service: nothing is fetched from a CDN,
so the page works on a closed hospital network. Open without a token, like /openapi.yaml.
"""

from __future__ import annotations

from flask import Blueprint
from flask_swagger_ui import get_swaggerui_blueprint

DOCS = "/docs"
SWAGGER_UI_CONFIG = {
    "app_name": "acne-scar-cds API",
    # Swagger UI would otherwise send the contract's URL to validator.swagger.io for a badge.
    "validatorUrl": None,
}


def docs_blueprint() -> Blueprint:
    return get_swaggerui_blueprint(DOCS, "/openapi.yaml", config=SWAGGER_UI_CONFIG, blueprint_name="docs")

"""The API docs page (/docs/): Swagger UI over /openapi.yaml, served by the service itself, open
without a token (tests/system/test_api_docs_browser.py opens it in a real browser)."""

from __future__ import annotations

import dataclasses
import json

from flask.testing import FlaskClient

from service.app import create_app
from service.settings import Settings


def test_docs_redirects_to_the_page_and_serves_its_files(client: FlaskClient) -> None:
    assert client.get("/docs").headers["Location"].endswith("/docs/")
    page = client.get("/docs/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '"url": "/openapi.yaml"' in html and '"validatorUrl": null' in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert f'"/docs/{asset}"' in html
        assert client.get(f"/docs/{asset}").status_code == 200
    assert client.get("/docs/no-such-file.js").get_json()["error"] == "not-found"


def test_the_docs_need_no_token_when_auth_is_required(settings: Settings) -> None:
    """A browser sends no JWT: like /openapi.yaml, the page and its files are open."""
    issuers = json.dumps([{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}])
    secured = dataclasses.replace(
        settings, auth_mode="required", auth_issuers=issuers, public_base_urls=("http://localhost",)
    )  # required with auth (issue 15)
    secured_client = create_app(secured).test_client()
    assert secured_client.get("/cds-services").status_code == 401
    assert secured_client.get("/docs").status_code == 308
    assert secured_client.get("/docs/").status_code == 200
    assert secured_client.get("/docs/swagger-ui-bundle.js").status_code == 200

"""The peer `make bench` compares with: a patient-view CDS service in HealthChain 0.16.1.

Written the way HealthChain's documentation shows (docs/reference/gateway/cdshooks.md: a
`CDSHooksService` hook on a `HealthChainAPI`, registered at `/cds`; the CDS Hooks "Advanced
Workflow Example" reads the prefetch through `CdsFhirAdapter`, which turns each prefetched
resource into a fhir.resources model), served the way `healthchain serve` does: uvicorn, one
worker. It reads the same prefetch as ours and answers one card, so the comparison is the
framework's cost of receiving a chart and answering, not clinical logic it does not have.

Runs in its own venv (.bench-venv/healthchain, made by bench/run.py from
bench/peers/healthchain-constraints.txt), never in the project's: `make bench` starts it with
`python -m uvicorn healthchain_service:app --app-dir bench/peers`.
"""

from __future__ import annotations

from healthchain.gateway import CDSHooksService, HealthChainAPI  # type: ignore[import-not-found]
from healthchain.io import CdsFhirAdapter  # type: ignore[import-not-found]
from healthchain.models import CDSRequest, CDSResponse  # type: ignore[import-not-found]
from healthchain.models.responses.cdsresponse import Card  # type: ignore[import-not-found]

SERVICE_ID = "acne-scar-treatment"
adapter = CdsFhirAdapter()
cds = CDSHooksService()


@cds.hook("patient-view", id=SERVICE_ID)
def acne_scar_treatment(request: CDSRequest) -> CDSResponse:
    """One card naming what the chart holds, from the prefetch as HealthChain models it."""
    document = adapter.parse(request)
    resources = document.fhir.prefetch_resources
    patient = resources.get("patient")
    entries = sum(len(getattr(bundle, "entry", None) or []) for bundle in resources.values())
    summary = f"Chart of {getattr(patient, 'id', 'unknown patient')}: {entries} resources read"
    card = Card(summary=summary[:140], indicator="info", source={"label": "HealthChain peer"})
    return CDSResponse(cards=[card])


app = HealthChainAPI(title="Acne scar CDS (HealthChain peer)", service_type="cds-hooks")
app.register_service(cds, path="/cds")

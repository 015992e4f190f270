"""The clinical core: FHIR resources -> facts -> guideline rules -> CDS Hooks cards.

Pure Python: no Flask, no requests, no database, no I/O beyond reading its own package
content at start-up. `service` imports this package; this package never imports `service`.
The guideline it encodes is `shared/clinical/GUIDELINE.md` (v1).
"""

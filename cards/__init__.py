"""The clinical core: FHIR resources -> facts -> guideline rules -> CDS Hooks cards.

Pure Python: no Flask, no requests, no database, no I/O beyond reading its own package
content at start-up. `service` imports this package; this package never imports `service`.
The guideline it encodes is specified in `docs/clinical-specification.md` (guideline v2); comments
that cite "GUIDELINE §n" or a rule (R1-R8) refer to that guideline's sections and rules.
"""

"""What the tests share: paths and the fixture date, FHIR builders, hook requests, the app and
gunicorn fixtures, feedback and scenario helpers. `paths`, `fhir` and `scenarios` import nothing
of `service`, so the core's tests (tests/cards) never load it."""

"""The adapter: speaks HTTP, CDS Hooks 2.0.1 and FHIR R4 around the clinical core in `cards`."""

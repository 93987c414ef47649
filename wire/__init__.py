"""The wire contract between Django and the executor (ADR 0005): canonical JSON, digests, signatures, sealing,
and the schemas of job specs and reports. Pure: the standard library, rfc8785 and PyNaCl only."""

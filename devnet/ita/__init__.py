"""A stand-in for Intel Trust Authority: a token signer with its JWKS, and the appraisal HTTP API around it."""

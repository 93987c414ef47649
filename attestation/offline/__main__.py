"""Entry point of `python -m attestation.offline`."""

from attestation.offline.cli import main

raise SystemExit(main())

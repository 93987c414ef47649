"""Entry point of `python -m payouts.audit`."""

from payouts.audit.cli import main

raise SystemExit(main())

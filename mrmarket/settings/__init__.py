"""Settings profiles: ``dev`` (default, embedded), ``test`` and ``prod``; see docs/configuration.md."""

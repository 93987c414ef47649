"""Exchange accounts and credentials, the ledger, the funds-flow state machine, market-making orders and jobs, the
executor client, report ingestion.
"""

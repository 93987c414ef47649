"""Exchange connectivity, below every app: whatever trades, validates pairs, probes health or checks a key reads it.

- `client`: the one ccxt client factory, typed transient failures (`exchange_call`), key-permission probing,
  cached market data.
- `credentials`: `ExchangeCredentials`, a key in memory that never prints its secrets.
- `permissions`: what a key may do and what each key role must and must not be able to do (pure).
- `errors`: the typed errors of the above (`ExchangeError` and its subclasses).

Callers import from the module that defines a name (`from mrmarket.exchanges.client import exchange_client`);
this package re-exports nothing.
"""

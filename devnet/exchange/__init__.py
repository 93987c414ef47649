"""The exchange simulator: a local exchange speaking Binance's spot REST dialect, which ccxt's unmodified
`binance` class trades against when its URLs point at loopback. See docs/devnet.md."""

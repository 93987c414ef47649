"""mm-executor: the lean asyncio market-making service that runs inside an Intel TDX VM. Never imports Django."""

__version__ = "0.1.0"

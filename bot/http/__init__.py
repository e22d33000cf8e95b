"""The bot's HTTP server and API (aiohttp)."""

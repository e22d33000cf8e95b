"""The bot's HTTP server and API (aiohttp, the only package that imports it besides the
Slack events route). Imports the use cases and below; knows no chat platform."""

"""The console chat (the embedded demo and the end-to-end tests): Block Kit shown as text.
Knows nothing of any other platform."""

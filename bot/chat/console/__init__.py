"""The console chat of the embedded demo and the end-to-end tests."""

"""Chat: the output port every platform implements, the neutral front and the notifier, and
one subpackage per platform, unaware of each other. Imports the use cases and below."""

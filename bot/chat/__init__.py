"""Chat: the output port, the neutral front and the notifier; one subpackage per platform."""

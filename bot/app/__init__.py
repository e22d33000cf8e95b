"""The use cases, chat-neutral: no third-party library and no SQL."""

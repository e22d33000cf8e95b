"""The use cases, chat-neutral: what people and the loop do to islands. They use storage
and the cluster through the infrastructure packages; no third-party library, no SQL."""

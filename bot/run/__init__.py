"""Entry points: settings, the composition root, the scheduler loop, the CLI, the demo.

They may import anything; nothing imports them.
"""

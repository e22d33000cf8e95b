"""The pure core: parsing, arithmetic and decisions, free of I/O.

Nothing in this package may import the database, Kubernetes or Slack libraries.
"""

"""Adapters to outside systems, one module or subpackage each, independent of each other
(metrics below them all). They import the domain, never the words: no sentences here."""

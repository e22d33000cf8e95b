"""Adapters to outside systems, one module or subpackage each, independent of each other."""

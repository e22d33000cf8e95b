"""Tests of the Lark adapter."""

"""Slack: bolt listeners, the Web API sender and the events route.

The only package that imports slack_bolt and slack_sdk.
"""

"""The pure domain: records, rules and arithmetic; imports the standard library only."""

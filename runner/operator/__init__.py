"""Operator commands: repair of zombie claims and its threshold, metrics, quarantine decisions,
rail pauses and an item's history."""

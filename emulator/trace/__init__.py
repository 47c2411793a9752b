"""Traces: recording, reading, replay, shrinking and showing executions."""

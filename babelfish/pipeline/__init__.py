"""The speech path: segment -> recognize -> translate -> synthesize, joined by bounded queues (stream.py)."""

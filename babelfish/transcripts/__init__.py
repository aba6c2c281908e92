"""Transcripts: the durable store of every call and utterance, and the /calls API with its export formats."""

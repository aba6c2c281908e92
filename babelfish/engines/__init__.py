"""Engines behind the pipeline stages. Each loads its model once per process and runs inference on its own
worker thread, so calls share models and the event loop never blocks."""

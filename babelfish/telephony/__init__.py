"""What Vonage speaks: webhooks and NCCOs (vonage.py) and the websocket audio protocol (wire.py)."""

"""The web app Vonage and browsers talk to: webhooks, the audio socket, reception, the browser phone, the
console, limits and metrics."""

"""Tools for trying and measuring babelfish without a phone: the fake Vonage, simulated calls, the demo,
recorded speech, benchmarks."""

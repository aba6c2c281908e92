"""What a call is made of, with no engines and no web: audio frames, languages, legs and rooms, utterances."""

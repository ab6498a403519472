"""Voice analyzers: audio plumbing, VAD, prosody features and speech emotion."""

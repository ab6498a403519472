"""meetmood's bot: event loop, media, meetings and orchestration."""

"""ElevenLabs Agents webhook ("server") tools: `POST /elevenlabs/tools/{toolName}`."""

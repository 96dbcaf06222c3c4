"""kb-sync: keep an ElevenLabs agent's knowledge base equal to a folder of markdown documents."""

__version__ = "0.1.0"

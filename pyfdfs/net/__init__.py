"""Asyncio transport shared by servers and clients: framed streams and the server loop."""

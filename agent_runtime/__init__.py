"""Agent Studio's in-sandbox runtime: HTTP server, Claude Agent SDK runner and log shipper.

Standalone: the standard library, the Claude Agent SDK and httpx; never Django.
"""

__version__ = "0.1.0"

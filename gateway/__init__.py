"""The gateway: the only public door. Identity, tokens, the route table, limits, and one merged OpenAPI document."""

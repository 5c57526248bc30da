"""The MCP server (Streamable HTTP at /mcp): the five tools for any MCP client."""

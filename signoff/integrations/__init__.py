"""Optional framework integrations: openai_agents, langgraph, mcp (each needs its extra)."""

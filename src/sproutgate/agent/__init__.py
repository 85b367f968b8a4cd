"""The chat agent: a language model behind any OpenAI-compatible endpoint (``model``), tools that act
as the signed-in caller (``tools``), conversations kept in ``agent_chats`` (``store``, ``history``),
the run and its events (``service``, ``events``) and the HTTP face (``routes``, ``schemas``, ``sse``).
See docs/agent.md."""

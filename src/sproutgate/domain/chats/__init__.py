"""Conversations with the agent: who owns which, how they are listed and titled, how much history
they keep, and the mark a conversation carries once it held other users' content.

``service.py`` the operations (one transaction each), ``rules.py`` the limits and pure rules,
``errors.py`` the stable codes. The agent face (``sproutgate.agent``) runs the model and calls
these; the messages themselves stay opaque here (see ``service.HistoryFormat``)."""

"""Which language model the agent talks to, built from Settings.

Any OpenAI-compatible chat-completions endpoint works (OpenAI, DeepSeek, Qwen through DashScope's
compatible mode, Ollama, vLLM): ``SPROUTGATE_AGENT_MODEL`` names the model,
``SPROUTGATE_AGENT_BASE_URL`` the endpoint (empty: OpenAI itself) and ``SPROUTGATE_AGENT_API_KEY``
the key (local servers may need none). The model is pydantic-ai's ``Model``, which is already the
small swappable interface; tests hand the service a ``FunctionModel`` or ``TestModel`` instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from sproutgate.config import Settings

OPENAI_HOSTS = frozenset({"api.openai.com"})

# A failed request is tried once more by the OpenAI SDK (it honours Retry-After); the whole run is
# still bounded by agent_timeout_seconds.
SDK_RETRIES = 1


def model_settings(settings: Settings) -> ModelSettings:
    """Per-request settings: the SDK's own timeout per attempt, and its retry count."""
    return ModelSettings(timeout=settings.agent_timeout_seconds, max_retries=SDK_RETRIES)


def build_chat_model(settings: Settings) -> Model | None:
    """The configured chat-completions model, or None when the agent is not configured."""
    if not settings.agent_configured:
        return None
    # Imported here so a process without an agent never loads the OpenAI SDK.
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider

    name = settings.agent_model.strip()
    base_url = settings.agent_base_url.strip().rstrip("/")
    api_key = settings.agent_api_key.strip() or None
    host = (urlsplit(base_url).hostname or "").lower()
    if not base_url or host in OPENAI_HOSTS:
        provider: OpenAIProvider | OpenAICompatibleProvider = OpenAIProvider(
            base_url=base_url or None, api_key=api_key
        )
    else:
        # The service's host names it in the stored history, so history recorded against one service
        # never replays provider-specific data to another.
        provider = OpenAICompatibleProvider(host or "openai-compatible", base_url=base_url, api_key=api_key)
    return OpenAIChatModel(name, provider=provider)

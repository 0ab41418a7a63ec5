"""Azure OpenAI: OpenCode calls it by deployment name, which its data plane has no way to list."""

from __future__ import annotations

from syncd.model import Kind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, NotListed

REASON = ("Azure OpenAI is called by deployment name, and its data plane lists base models, not "
          "deployments (only the Azure management API does); left as written")


class AzureProvider:
    kind = Kind.AZURE

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return {"api-key": spec.api_key.reveal()} if spec.api_key else {}

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        # `GET /openai/models?api-version=…` answers, but with model IDs (gpt-4o) where OpenCode
        # needs the user's deployment names (my-gpt4o): writing them would break every request
        raise NotListed(REASON)


PROVIDER = AzureProvider()

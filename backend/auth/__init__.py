"""Who is calling: agents by API key, people by OIDC ID token."""

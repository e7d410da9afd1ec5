"""HTTP routers, one per domain. Thin: they call services and shape responses."""

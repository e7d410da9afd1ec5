"""Running Signoff as a service: the seed's Table 2 controls as Prometheus metrics, and
OpenTelemetry traces (``docs/observability.md``)."""

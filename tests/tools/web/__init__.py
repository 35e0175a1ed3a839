"""Web research tests: fetcher, SSRF guard, extraction, backends, the loopback site."""

"""Test support: throwaway PostgreSQL and Redis servers, free ports, service processes."""

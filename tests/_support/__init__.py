"""Test-only support code that the shipped package does not carry (a fault-injecting TCP proxy)."""

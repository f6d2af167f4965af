"""Resource namespaces of the root clients (plans written once; async twins generated)."""

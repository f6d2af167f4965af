"""Test support: the pytest plugin (stack fixtures) and the fake RunPod server."""

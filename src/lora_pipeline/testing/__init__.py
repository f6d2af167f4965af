"""Test support for users' own suites: the pytest plugin (stack fixtures) and the fake RunPod server.

The plugin is registered as the ``lora_pipeline`` pytest entry point and imports this package in every test run,
so it stays import-free. The project's own fault-injecting TCP proxy lives in its tests (``tests/_support``).
"""

"""Monitoring: drift, performance, concept-drift and sequential tests, and the engine that runs a policy's monitors."""

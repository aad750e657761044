"""Fixtures for every test: real servers, started here, never mocked."""

from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.nats",
    "tests.fixtures.timescale",
]

# No timing assertions in tests: hypothesis' per-example deadline is one, and
# on a loaded 2-core CI machine it fails at random. Example counts stay small
# so the suite stays fast; the `thorough` profile is for a long local run.
settings.register_profile(
    "vigil", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=5000)
settings.load_profile("vigil")

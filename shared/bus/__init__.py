"""NATS helpers: connecting with any of NATS' auth methods, provisioning the contract."""

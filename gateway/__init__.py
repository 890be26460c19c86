"""The edge process that runs on each Raspberry Pi: sources, rules, outbox, uplink."""

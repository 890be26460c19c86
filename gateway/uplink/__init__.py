"""The MQTT side of the gateway: the link, batching, pacing, status, down-link documents, clock watch."""

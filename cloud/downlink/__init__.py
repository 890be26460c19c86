"""Down-link documents: what the cloud publishes to each gateway (master data, recall list), and when."""

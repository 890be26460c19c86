"""Who may speak to the cloud: gateways' broker logins now; people, roles and tokens to come."""

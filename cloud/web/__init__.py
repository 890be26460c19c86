"""The browser pages of the cloud: server-rendered HTML over the API's own query layer."""

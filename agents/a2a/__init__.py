"""Agent-to-agent: the daemon's A2A endpoint (one signed Agent Card per hosted agent, JSON-RPC
through the maintained `a2a-sdk`) and the verification of other operators' cards."""

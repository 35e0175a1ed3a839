"""The nodes of the research loop, one module each; the topology is in ``leadline.agent.graph``."""

"""The streaming layer: the one Faust app, the topics, the codecs and the tables."""

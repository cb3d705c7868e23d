"""The measurement functions, each returning records: complexity (MACs, parameters, activations),
accuracy (+ metrics), latency (timing protocol, speed-ups)."""

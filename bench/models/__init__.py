"""What can be measured: the model sources (designs, torch peers, published files), the published
files' table and runners (peers.py) and the weights of each model (weights.py)."""

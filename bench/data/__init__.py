"""Input data: samples.py reads image / label pairs (Sample, scan_folder, load_pair); datasets.py knows
the dataset layouts and the fixed train / validation splits."""

"""Pure metrics (numpy only; no Django, no torch, no app): COCO detection, operating points,
detection confusion, TIDE and classification reports. Used by the evaluation app, the training
loop (validation mAP) and bench/; tests/metrics/test_purity.py proves it stands alone."""
